#include "protocol.h"

static int set_str(sh_value *m, const char *key, const char *s)
{
    return sh_value_map_set(m, key, s ? sh_value_cstring(s) : sh_value_null());
}

sh_value *sh_protocol_invocation_to_value(const sh_invocation *inv)
{
    sh_value *m = sh_value_map();
    if (!m)
        return NULL;
    int rc = set_str(m, "execution_id", inv->execution_id);
    rc |= set_str(m, "task_id", inv->task_id);
    rc |= set_str(m, "pipeline", inv->pipeline);
    rc |= set_str(m, "stage", inv->stage);
    rc |= set_str(m, "plugin", inv->plugin);
    rc |= set_str(m, "base_dir", inv->base_dir);
    rc |= sh_value_map_set(m, "attempt", sh_value_int(inv->attempt));
    if (inv->deterministic) {
        rc |= sh_value_map_set(m, "deterministic", sh_value_bool(1));
        rc |= sh_value_map_set(m, "seed", sh_value_int((int64_t)inv->seed));
    }
    if (rc != SH_OK) {
        sh_value_free(m);
        return NULL;
    }
    return m;
}

void sh_protocol_invocation_from_value(const sh_value *map, sh_invocation *inv)
{
    inv->execution_id = sh_value_get_string(sh_value_map_get(map, "execution_id"), NULL);
    inv->task_id = sh_value_get_string(sh_value_map_get(map, "task_id"), NULL);
    inv->pipeline = sh_value_get_string(sh_value_map_get(map, "pipeline"), NULL);
    inv->stage = sh_value_get_string(sh_value_map_get(map, "stage"), NULL);
    inv->plugin = sh_value_get_string(sh_value_map_get(map, "plugin"), NULL);
    inv->base_dir = sh_value_get_string(sh_value_map_get(map, "base_dir"), NULL);
    int64_t attempt = sh_value_get_int(sh_value_map_get(map, "attempt"));
    inv->attempt = attempt > 0 && attempt <= UINT32_MAX ? (uint32_t)attempt : 1;
    inv->deterministic = sh_value_get_bool(sh_value_map_get(map, "deterministic"));
    inv->seed = (uint64_t)sh_value_get_int(sh_value_map_get(map, "seed"));
}

void sh_protocol_put_done(sh_buf *b, uint8_t type, int64_t status, int64_t aux, const char *message)
{
    size_t f = sh_wire_frame_begin(b, type);
    sh_wire_put_int(b, status);
    sh_wire_put_int(b, aux);
    sh_wire_put_string(b, message ? message : "");
    sh_wire_frame_end(b, f);
}

sh_value *sh_protocol_signature_to_value(const sh_signature *sig)
{
    sh_value *a = sh_value_array();
    int rc = a ? sh_value_array_push(a, sh_value_cstring(sh_ntype_name(sig->ret))) : SH_ERR_NOMEM;
    for (size_t i = 0; rc == SH_OK && i < sig->nargs; i++)
        rc = sh_value_array_push(a, sh_value_cstring(sh_ntype_name(sig->args[i])));
    if (rc != SH_OK) {
        sh_value_free(a);
        return NULL;
    }
    return a;
}

bool sh_protocol_signature_from_value(const sh_value *v, sh_signature *sig)
{
    size_t n = sh_value_count(v);
    if (sh_value_type(v) != SH_TYPE_ARRAY || n < 1 || n > SH_SIG_MAX_ARGS + 1)
        return false;
    const char *ret = sh_value_get_string(sh_value_array_get(v, 0), NULL);
    if (!ret || !sh_ntype_parse(ret, true, &sig->ret))
        return false;
    sig->nargs = n - 1;
    for (size_t i = 1; i < n; i++) {
        const char *t = sh_value_get_string(sh_value_array_get(v, i), NULL);
        if (!t || !sh_ntype_parse(t, false, &sig->args[i - 1]))
            return false;
    }
    return true;
}
