/* test/fn: a plugin with no code of its own. Its descriptor declares function stages over libm (hypot, pow),
 * which this library links: the host calls them through libffi. The entry symbol is still required, so the
 * magic block, negotiation and metadata checks apply as to any plugin. */
#include <stagehost/sdk.h>

SH_SDK_PLUGIN(.name = "test/fn", .version = "1.0.0", .stages = NULL, .stage_count = 0);
