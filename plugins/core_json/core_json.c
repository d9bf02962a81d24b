/*
 * core/json: JSON text to items and back, and reshaping items by their fields, with jansson.
 *
 *   parse      a text field (JSON, a JSON array, or JSON Lines) becomes items
 *   serialize  each item (or one of its fields) becomes JSON text in a field
 *   select     keep only the listed fields
 *   rename     rename fields, keeping their order
 *
 * Built only against the stagehost SDK, as any outside plugin is. Every stage's state is its parsed config, so
 * the stages hold nothing between batches.
 */
#include "core_json.h"

static const sh_sdk_stage stages[] = {
    {.type = "parse", .input = "any", .output = "any",
     .description = "parse a text field (JSON, JSON array, JSON Lines) into items: field, format, into, keep",
     .create = parse_create, .process = parse_process, .destroy = free},
    {.type = "serialize", .input = "any", .output = "any",
     .description = "add an item's JSON text as a field: field, source, pretty, sort_keys, only",
     .create = serialize_create, .process = serialize_process, .destroy = free},
    {.type = "select", .input = "any", .output = "any", .description = "keep only the listed fields: fields, missing",
     .create = select_create, .process = select_process, .destroy = free},
    {.type = "rename", .input = "any", .output = "any", .description = "rename fields: fields = { old = \"new\"; }",
     .create = rename_create, .process = rename_process, .destroy = free},
};

SH_SDK_PLUGIN(.name = "core/json", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
