/* Driven by NativeAbiTests.cs.
 *   native_abi_check DIR compute IN OUT : reads the inputs the test also gives the C# kernels, runs every rlhf.h
 *                                         function, writes the raw outputs (see NativeAbiTests for the layout).
 *   native_abi_check DIR errors         : prints "case<TAB>status<TAB>message" per bad call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlhf.h"

static void* read_exact(FILE* f, size_t bytes)
{
    void* p = malloc(bytes);
    if (p == NULL || fread(p, 1, bytes, f) != bytes) { fprintf(stderr, "short input\n"); exit(3); }
    return p;
}

static void write_exact(FILE* f, const void* p, size_t bytes)
{
    if (fwrite(p, 1, bytes, f) != bytes) { fprintf(stderr, "short output\n"); exit(3); }
}

static int require(int status, const char* what)
{
    if (status != RLHF_OK) { fprintf(stderr, "%s: status %d: %s\n", what, status, rlhf_last_error()); exit(4); }
    return status;
}

static void report(const char* name, int status)
{
    printf("%s\t%d\t", name, status);
    for (const char* c = rlhf_last_error(); *c; c++) putchar(*c == '\n' || *c == '\t' ? ' ' : *c);
    putchar('\n');
}

static int errors(const char* dir)
{
    float x[8] = { 0 }, mask[8] = { 1, 1, 1, 1, 1, 1, 1, 1 }, a[8], r[8];
    int32_t tokens[2] = { 0, 99 };
    report("before_init", rlhf_gae(x, x, mask, 2, 4, 1.0f, 0.95f, a, r));
    require(rlhf_init(dir), "rlhf_init");
    report("gamma", rlhf_gae(x, x, mask, 2, 4, 1.5f, 0.95f, a, r));
    report("null_rewards", rlhf_gae(NULL, x, mask, 2, 4, 1.0f, 0.95f, a, r));
    report("token", rlhf_token_statistics(x, tokens, 2, 4, 1.0f, a, r, a));
    report("estimator", rlhf_kl_estimate(4, x, x, 8, a));
    report("batch", rlhf_policy_loss(x, x, x, mask, 0, 4, 0.2f, 1.0f, a, NULL));
    report("ok_after_failure", rlhf_value_loss(x, x, x, mask, 2, 4, 0.2f, 1.0f, a, NULL));
    return 0;
}

int main(int argc, char** argv)
{
    if (argc >= 3 && strcmp(argv[2], "errors") == 0) return errors(argv[1]);
    if (argc != 5 || strcmp(argv[2], "compute") != 0) { fprintf(stderr, "usage: see the comment at the top\n"); return 2; }
    require(rlhf_init(argv[1]), "rlhf_init");

    FILE* in = fopen(argv[3], "rb");
    if (in == NULL) { perror(argv[3]); return 3; }
    int32_t* shape = read_exact(in, 4 * sizeof(int32_t));
    int32_t n = shape[0], v = shape[1], b = shape[2], t = shape[3];
    size_t nv = (size_t)n * v, bt = (size_t)b * t;
    float* scalars = read_exact(in, 6 * sizeof(float)); /* temperature, gamma, lambda, clip, value clip, gradient scale */
    float* logits = read_exact(in, nv * sizeof(float));
    float* reference = read_exact(in, nv * sizeof(float));
    int32_t* tokens = read_exact(in, n * sizeof(int32_t));
    float* logp = read_exact(in, n * sizeof(float));
    float* ref_logp = read_exact(in, n * sizeof(float));
    float* rewards = read_exact(in, bt * sizeof(float));
    float* values = read_exact(in, bt * sizeof(float));
    float* mask = read_exact(in, bt * sizeof(float));
    float* new_logp = read_exact(in, bt * sizeof(float));
    float* old_logp = read_exact(in, bt * sizeof(float));
    float* old_values = read_exact(in, bt * sizeof(float));
    fclose(in);

    float* stats = malloc(4 * n * sizeof(float)); /* log_probs, entropy, log_sum_exp, kl_full */
    float* kl = malloc(3 * n * sizeof(float));
    float* gae = malloc(4 * bt * sizeof(float)); /* advantages, returns, policy grad, value grad */
    rlhf_policy_loss_stats policy;
    rlhf_value_loss_stats value;
    require(rlhf_token_statistics(logits, tokens, n, v, scalars[0], stats, stats + n, stats + 2 * n), "token_statistics");
    require(rlhf_kl_full_vocabulary(logits, reference, n, v, scalars[0], stats + 3 * n), "kl_full_vocabulary");
    for (int k = 1; k <= 3; k++) require(rlhf_kl_estimate(k, logp, ref_logp, n, kl + (k - 1) * n), "kl_estimate");
    require(rlhf_gae(rewards, values, mask, b, t, scalars[1], scalars[2], gae, gae + bt), "gae");
    require(rlhf_policy_loss(new_logp, old_logp, gae, mask, b, t, scalars[3], scalars[5], gae + 2 * bt, &policy), "policy_loss");
    require(rlhf_value_loss(values, old_values, gae + bt, mask, b, t, scalars[4], scalars[5], gae + 3 * bt, &value), "value_loss");

    FILE* out = fopen(argv[4], "wb");
    if (out == NULL) { perror(argv[4]); return 3; }
    write_exact(out, stats, 4 * n * sizeof(float));
    write_exact(out, kl, 3 * n * sizeof(float));
    write_exact(out, gae, 4 * bt * sizeof(float));
    write_exact(out, &policy, sizeof policy);
    write_exact(out, &value, sizeof value);
    return fclose(out) == 0 ? 0 : 3;
}
