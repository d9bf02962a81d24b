/* A descriptor as a value and back, so that it can cross to the zygote, which never read the file. */
#ifndef SH_DESCRIPTOR_VALUE_H
#define SH_DESCRIPTOR_VALUE_H

#include "registry/descriptor.h"
#include "value/value.h"

/* The fields a worker needs (identity, library, stages, limits, permissions). NULL when out of memory. */
sh_value *sh_descriptor_to_value(const sh_descriptor *d);
/* The reverse; SH_S_PROTOCOL when a field is missing or mistyped. */
sh_status sh_descriptor_from_value(const sh_value *v, sh_descriptor **out, sh_error *err);

#endif
