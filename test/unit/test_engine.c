/* The engine's stage state machine, driven through sh_engine_run with the built-in stages and test/faults:
 * retries (a flaky stage succeeding on a later attempt, and running out of attempts), on_failure = "continue",
 * gate polls (the gate runs its upstream stage again until its condition holds, or times out), resume (finished
 * stages reused, attempt numbers going on from the failed run) and the output cache. Every run records into a
 * temporary run store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[256];
static char store[PATH_MAX];
static sh_env env;
static sh_runtime rt;

/* Writes pipeline NAME (DIR/NAME.cfg) with the stage list body `stages`, and runs it (resuming `resume_id`
 * unless NULL) with the runtime of the test and its store. */
static sh_status run(const char *name, const char *stages, const char *resume_id, sh_run_report *report,
                     sh_error *err)
{
    char path[PATH_MAX], text[4096];
    snprintf(path, sizeof path, "%s/%s.cfg", dir, name);
    snprintf(text, sizeof text, "pipeline = { name = \"%s\"; stages = ( %s ); };\n", name, stages);
    tu_write_file(path, text);
    sh_pipeline *p = NULL;
    if (sh_pipeline_load(path, &p, err) != SH_S_OK)
        fail_msg("%s", err->message);
    sh_run_options opts = {.store_path = store, .resume_id = resume_id, .jobs = 2};
    sh_status rc = sh_engine_run(p, &rt, &opts, report, err);
    sh_pipeline_free(p);
    return rc;
}

static const sh_stage_report *stage(const sh_run_report *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->stages[i].name, name) == 0)
            return &r->stages[i];
    fail_msg("no stage '%s' in the report", name);
    return NULL;
}

/* Asserts that stage `name` ended with `status` after `attempts` attempts (polls, for a gate). */
static void expect_stage(const sh_run_report *r, const char *name, const char *status, uint32_t attempts)
{
    const sh_stage_report *s = stage(r, name);
    if (strcmp(s->status, status) != 0 || s->attempts != attempts)
        print_error("stage '%s': %s after %u attempts (error: %s); expected %s after %u\n", name, s->status,
                    s->attempts, s->error ? s->error : "none", status, attempts);
    assert_string_equal(s->status, status);
    assert_int_equal(s->attempts, attempts);
}

/* Asserts that the file DIR/`name` (a write stage's output) contains `want`. */
static void expect_output(const char *name, const char *want)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = tu_read_file(path);
    tu_expect_contains(text, want);
    free(text);
}

#define READ_DOCS "{ name = \"src\"; type = \"read\"; config = { path = \"docs\"; }; }, "
#define WRITE(file) ", { name = \"out\"; type = \"write\"; config = { path = \"" file "\"; }; }"

/* src (the documents) -> flaky (in-process, failing its first `fail_times` attempts, retried `retries` times)
 * -> out (writing DIR/`file`), as a stage list body in `buf`. */
static const char *flaky_stages(char *buf, size_t size, int fail_times, int retries, const char *file)
{
    snprintf(buf, size,
             READ_DOCS "{ name = \"flaky\"; type = \"test/faults.flaky\"; isolation = \"none\";"
                       "  config = { fail_times = %d; }; retry = { max = %d; backoff_ms = 1; }; }" WRITE("%s"),
             fail_times, retries, file);
    return buf;
}

static void retry_succeeds_on_a_later_attempt(void **state)
{
    (void)state;
    sh_run_report r;
    sh_error err;
    char stages[1024];
    sh_status rc = run("retry", flaky_stages(stages, sizeof stages, 2, 2, "retry.jsonl"), NULL, &r, &err);
    if (rc != SH_S_OK)
        fail_msg("%s", err.message);
    assert_string_equal(r.status, "succeeded");
    expect_stage(&r, "src", "succeeded", 1);
    expect_stage(&r, "flaky", "succeeded", 3);
    expect_stage(&r, "out", "succeeded", 1);
    /* The plugin saw the attempt number in its context: its item says which attempt passed. */
    expect_output("retry.jsonl", "\"attempt\":3");
    sh_run_report_free(&r);
}

static void retries_run_out(void **state)
{
    (void)state;
    sh_run_report r;
    sh_error err;
    char stages[1024];
    sh_status rc = run("exhausted", flaky_stages(stages, sizeof stages, 5, 1, "never.jsonl"), NULL, &r, &err);
    assert_int_equal(rc, SH_S_STAGE);
    tu_expect_contains(err.message, "stage 'flaky' (plugin 'test/faults' 1.0.0, action 'flaky') failed on attempt 2");
    tu_expect_contains(err.message, "stages not run: 'out'");
    assert_string_equal(r.status, "failed");
    expect_stage(&r, "flaky", "failed", 2);
    tu_expect_contains(stage(&r, "flaky")->error, "failing attempt 2 of the first 5 on purpose");
    expect_stage(&r, "out", "not run", 0);
    sh_run_report_free(&r);
}

/* on_failure = "continue": only the failed stage's downstream branch is skipped; the run is partial. */
static void a_failure_that_continues_skips_only_its_branch(void **state)
{
    (void)state;
    sh_run_report r;
    sh_error err;
    sh_status rc = run("partial",
                       READ_DOCS "{ name = \"bad\"; type = \"test/faults.fail\"; isolation = \"none\";"
                                 "  depends_on = ( \"src\" ); on_failure = \"continue\"; },"
                                 "{ name = \"after_bad\"; type = \"passthrough\"; depends_on = ( \"bad\" ); },"
                                 "{ name = \"good\"; type = \"passthrough\"; depends_on = ( \"src\" ); }",
                       NULL, &r, &err);
    if (rc != SH_S_OK)
        fail_msg("%s", err.message);
    assert_string_equal(r.status, "partial");
    expect_stage(&r, "bad", "failed", 1);
    expect_stage(&r, "after_bad", "skipped", 0);
    tu_expect_contains(stage(&r, "after_bad")->error, "upstream stage 'bad'");
    expect_stage(&r, "good", "succeeded", 1);
    assert_int_equal(stage(&r, "good")->items_out, 1);
    sh_run_report_free(&r);
}

/* `counter` in a worker says how many times that worker ran it: each poll runs it again, so the gate waiting for
 * calls == 3 passes on the second poll (the first check is of the upstream stage's own run). */
static void gate_polls_its_upstream_until_the_condition_holds(void **state)
{
    (void)state;
    sh_run_report r;
    sh_error err;
    sh_status rc = run("gated",
                       "{ name = \"count\"; type = \"test/faults.counter\"; isolation = \"process\"; },"
                       "{ name = \"wait\"; type = \"gate\"; config = { field = \"calls\"; equals = 3;"
                       "  poll_interval_ms = 1; timeout_ms = 60000; }; }" WRITE("gate.jsonl"),
                       NULL, &r, &err);
    if (rc != SH_S_OK)
        fail_msg("%s", err.message);
    expect_stage(&r, "count", "succeeded", 1);
    expect_stage(&r, "wait", "succeeded", 2);
    assert_int_equal(stage(&r, "wait")->items_out, 1);
    expect_output("gate.jsonl", "\"calls\":3");
    assert_int_equal(r.workers_started, 1); /* the polls reused the stage's worker */
    sh_run_report_free(&r);
}

static void gate_times_out_with_what_it_last_saw(void **state)
{
    (void)state;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/status.txt", dir);
    tu_write_file(path, "pending");
    sh_run_report r;
    sh_error err;
    sh_status rc = run("timeout",
                       "{ name = \"status\"; type = \"read\"; config = { path = \"status.txt\"; }; },"
                       "{ name = \"wait\"; type = \"gate\"; config = { field = \"content\"; equals = \"ready\";"
                       "  poll_interval_ms = 1; timeout_ms = 30; }; }",
                       NULL, &r, &err);
    assert_int_equal(rc, SH_S_TIMEOUT);
    tu_expect_contains(err.message, "gate timed out after 30 ms");
    tu_expect_contains(err.message, "item 1 has content = \"pending\"");
    const sh_stage_report *g = stage(&r, "wait");
    assert_string_equal(g->status, "failed");
    assert_true(g->attempts >= 1); /* polls: how many fit in 30 ms depends on the machine */
    sh_run_report_free(&r);
}

/* A failed run resumed: the stage that finished is reused from the store, the failed one runs again with its
 * attempt numbers going on from the failed run's, and the run keeps its id. */
static void resume_reuses_finished_stages_and_continues_attempts(void **state)
{
    (void)state;
    char stages[1024];
    flaky_stages(stages, sizeof stages, 3, 1, "resumed.jsonl");
    sh_run_report first, second;
    sh_error err;
    assert_int_equal(run("resumable", stages, NULL, &first, &err), SH_S_STAGE);
    tu_expect_contains(err.message, "--resume");
    expect_stage(&first, "src", "succeeded", 1);
    expect_stage(&first, "flaky", "failed", 2);
    expect_stage(&first, "out", "not run", 0);

    /* A prefix of the id is enough. */
    char prefix[13];
    snprintf(prefix, sizeof prefix, "%s", first.run_id);
    sh_status rc = run("resumable", stages, prefix, &second, &err);
    if (rc != SH_S_OK)
        fail_msg("%s", err.message);
    assert_string_equal(second.run_id, first.run_id);
    assert_string_equal(second.status, "succeeded");
    expect_stage(&second, "src", "reused", 1);
    expect_stage(&second, "flaky", "succeeded", 4); /* attempt 3 failed, 4 passed */
    expect_stage(&second, "out", "succeeded", 1);
    expect_output("resumed.jsonl", "\"attempt\":4");
    sh_run_report_free(&first);
    sh_run_report_free(&second);
}

/* The counter's worker stays warm across the runs of one runtime: had the cached stage run again, its item would
 * say calls = 2. */
static void cache_reuses_output_for_the_same_input(void **state)
{
    (void)state;
    static const char stages[] = READ_DOCS "{ name = \"count\"; type = \"test/faults.counter\"; "
                                           "isolation = \"process\"; cache = true; }" WRITE("cache.jsonl");
    sh_run_report r;
    sh_error err;
    if (run("cached", stages, NULL, &r, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    expect_stage(&r, "count", "succeeded", 1);
    expect_output("cache.jsonl", "\"calls\":1");
    sh_run_report_free(&r);

    if (run("cached", stages, NULL, &r, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    expect_stage(&r, "src", "succeeded", 1); /* read is not cached: it runs and finds the same input */
    expect_stage(&r, "count", "cached", 0);
    assert_int_equal(stage(&r, "count")->items_out, 1);
    expect_output("cache.jsonl", "\"calls\":1");
    sh_run_report_free(&r);

    /* Other input, another key: the stage runs. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/docs/b.txt", dir);
    tu_write_file(path, "Another document.");
    if (run("cached", stages, NULL, &r, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    expect_stage(&r, "count", "succeeded", 1);
    expect_output("cache.jsonl", "\"calls\":2");
    sh_run_report_free(&r);
}

static int setup(void **state)
{
    (void)state;
    if (!tu_mkdtemp(dir, sizeof dir, "sh-test-engine"))
        return -1;
    char plugins[PATH_MAX], path[PATH_MAX];
    snprintf(plugins, sizeof plugins, "%s/plugins", dir);
    snprintf(path, sizeof path, "%s/docs", dir);
    if (mkdir(plugins, 0755) != 0 || mkdir(path, 0755) != 0)
        return -1;
    tu_faults_plugin(plugins, path, sizeof path);
    snprintf(path, sizeof path, "%s/docs/a.txt", dir);
    tu_write_file(path, "First document. It has two sentences.");
    snprintf(store, sizeof store, "%s/runs.db", dir);
    /* Crash history and the registry cache belong to the test. */
    snprintf(path, sizeof path, "%s/state", dir);
    tu_env(&env, path, NULL);
    const char *dirs[] = {plugins};
    sh_error err;
    if (sh_runtime_start(&rt, &env, true, NULL, dirs, 1, &err) != SH_S_OK) {
        print_error("%s\n", err.message);
        return -1;
    }
    /* The engine is under test, not the sandbox: valgrind cannot run seccomp or Landlock. */
    rt.allow_unconfined = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sh_runtime_stop(&rt);
    sh_env_free(&env);
    return tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(retry_succeeds_on_a_later_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failure_that_continues_skips_only_its_branch, setup, teardown),
        cmocka_unit_test_setup_teardown(gate_polls_its_upstream_until_the_condition_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(gate_times_out_with_what_it_last_saw, setup, teardown),
        cmocka_unit_test_setup_teardown(resume_reuses_finished_stages_and_continues_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_reuses_output_for_the_same_input, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed;
}
