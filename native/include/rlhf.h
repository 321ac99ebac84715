/*
 * rlhf.h: a C ABI over rlhf's hot-path kernels (Rlhf.Kernels), for C, C++ and Python ctypes.
 *
 * librlhf.so hosts the .NET runtime (hostfxr) and forwards each call to Rlhf.Native.dll; results are the
 * managed kernels' bit for bit. Build with native/build.sh OUT; OUT then holds librlhf.so and Rlhf.Native.dll
 * with its dependencies. Needs the .NET 10 runtime installed (as for `dotnet`).
 *
 * Conventions:
 *  - Every function returns an int status: RLHF_OK (0) or a nonzero code below. Nothing is thrown, nothing
 *    aborts. After a failure rlhf_last_error() describes it (it names the argument, index and value).
 *  - fp32 data; arrays are caller-owned, contiguous and row-major; shapes are given in [brackets].
 *    Masks are floats, 0 = padding, anything else = valid; masked positions never reach a result.
 *  - Calls are synchronous and thread-safe; kernels use up to all cores internally. Results are
 *    deterministic (same inputs give the same bits). Outputs are unspecified after a failure.
 */
#ifndef RLHF_H
#define RLHF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RLHF_OK 0
/* A bad argument: NULL pointer, non-positive shape, out-of-range parameter or token id, NaN where not allowed, an output
 * that overlaps an input where that is not allowed (each function says). */
#define RLHF_E_ARGUMENT 1
/* The runtime is not running: rlhf_init was not called or failed (hostfxr or Rlhf.Native.dll not found). */
#define RLHF_E_RUNTIME 2
/* An unexpected failure inside the managed kernels (a bug; the message names the exception). */
#define RLHF_E_INTERNAL 3

/* Starts the .NET runtime and loads DIRECTORY/Rlhf.Native.dll (with its runtimeconfig.json and deps.json beside it).
 * Call once before anything else; later calls return RLHF_OK without reloading (the runtime cannot restart).
 * Returns RLHF_E_RUNTIME when hostfxr or the assembly cannot be loaded. */
int rlhf_init(const char* directory);

/* The UTF-8 message of the last failed call on this thread ("" if none). Valid until this thread's next failure. */
const char* rlhf_last_error(void);

/* logits [rows, vocab], tokens [rows] -> log_probs, entropy, log_sum_exp [rows]. Per row, with z = logits / temperature:
 *   log_sum_exp = log sum_j exp(z_j);  log_probs = z[token] - log_sum_exp;  entropy = -sum_j p_j log p_j, p = softmax(z).
 * -INFINITY logits are banned tokens (probability 0). Fails on a token outside [0, vocab), temperature <= 0, not
 * finite or so small that 1/temperature overflows, a NaN or +INFINITY logit, or a row that is -INFINITY everywhere. */
int rlhf_token_statistics(const float* logits, const int32_t* tokens, int32_t rows, int32_t vocab, float temperature,
                          float* log_probs, float* entropy, float* log_sum_exp);

/* policy_logits, reference_logits [rows, vocab] -> kl [rows]: exact KL(p || q) over the vocabulary with
 * p = softmax(policy / temperature), q = softmax(reference / temperature). A token only the reference bans gives +INFINITY. */
int rlhf_kl_full_vocabulary(const float* policy_logits, const float* reference_logits, int32_t rows, int32_t vocab,
                            float temperature, float* kl);

/* log_probs, reference_log_probs [count] -> kl [count], Schulman's estimators from the sampled tokens, u = ref - logp:
 *   estimator 1: k1 = -u;   2: k2 = u*u/2;   3: k3 = exp(u) - 1 - u (series for small |u|).  Others fail.
 * kl may be exactly log_probs or reference_log_probs (in place); any other overlap with them fails. */
int rlhf_kl_estimate(int32_t estimator, const float* log_probs, const float* reference_log_probs, int32_t count, float* kl);

/* rewards, values, mask [batch, steps] -> advantages, returns [batch, steps]: generalised advantage estimation
 * (TRL's compute_advantages, before whitening). Per row, from t = steps-1 down, with masked rewards/values read as 0:
 *   delta = r[t] + gamma*v[t+1] - v[t] (v[steps] = 0);  last = delta + gamma*lambda*last;
 *   advantages[t] = last, returns[t] = last + v[t] at valid tokens, 0 at masked ones.
 * Fails when gamma or lambda is outside [0, 1], a valid reward/value is NaN, or an output overlaps an input or the other
 * output (the NaN check reads the inputs again after the scan). */
int rlhf_gae(const float* rewards, const float* values, const float* mask, int32_t batch, int32_t steps,
             float gamma, float lambda, float* advantages, float* returns);

typedef struct rlhf_policy_loss_stats {
    float loss;          /* masked_mean(max(-A*ratio, -A*clip(ratio, 1-eps, 1+eps))) */
    float clip_fraction; /* share of valid tokens whose clipped term wins */
    float approx_kl;     /* masked_mean((new - old)^2) / 2 */
    float mean_ratio;    /* masked_mean(exp(new - old)) */
    int32_t valid_count; /* tokens with mask != 0; every statistic is 0 when it is 0 */
} rlhf_policy_loss_stats;

/* new_log_probs, old_log_probs, advantages, mask [batch, steps] -> grad_new_log_probs [batch, steps] and *stats
 * (stats may be NULL): PPO's clipped surrogate (TRL's policy loss) and
 *   grad[i] = gradient_scale * d loss / d new_log_probs[i] = gradient_scale * (l1 >= l2 ? -A*ratio : 0) / valid_count,
 * 0 at masked tokens. Fails when clip_range < 0 or NaN, gradient_scale is not finite, the gradient overlaps an input
 * (the input check reads the inputs again after the gradient is written), or at a valid token an input is NaN, an
 * advantage is ±INFINITY, a log-prob is +INFINITY or an old log-prob is -INFINITY (a token the rollout policy could
 * not have sampled). A new log-prob of -INFINITY (a token the new policy bans) gives ratio 0 there: gradient 0, loss
 * max(0, -A*(1-eps)), and approx_kl = +INFINITY. */
int rlhf_policy_loss(const float* new_log_probs, const float* old_log_probs, const float* advantages, const float* mask,
                     int32_t batch, int32_t steps, float clip_range, float gradient_scale,
                     float* grad_new_log_probs, rlhf_policy_loss_stats* stats);

typedef struct rlhf_value_loss_stats {
    float loss;               /* masked_mean(max((v-R)^2, (clip(v, v_old-eps, v_old+eps) - R)^2)) / 2 */
    float clip_fraction;      /* share of valid tokens whose clipped term wins */
    float mean_squared_error; /* masked_mean((v-R)^2) */
    int32_t valid_count;
} rlhf_value_loss_stats;

/* values, old_values, returns, mask [batch, steps] -> grad_values [batch, steps] and *stats (may be NULL): PPO's clipped
 * value loss; grad[i] = gradient_scale * (l1 >= l2 ? v - R : 0) / valid_count, 0 at masked tokens.
 * clip_range = INFINITY turns clipping off: loss = masked_mean((v-R)^2) / 2 and grad[i] = gradient_scale * (v - R) /
 * valid_count, the same bits whatever old_values holds (±INFINITY included). Fails when clip_range < 0 or NaN,
 * gradient_scale is not finite, the gradient overlaps an input, or a valid input is NaN (old_values too with clipping
 * off). Other ±INFINITY inputs are not checked: they follow IEEE arithmetic (an infinite old value with a finite
 * clip_range gives loss = +INFINITY). */
int rlhf_value_loss(const float* values, const float* old_values, const float* returns, const float* mask,
                    int32_t batch, int32_t steps, float clip_range, float gradient_scale,
                    float* grad_values, rlhf_value_loss_stats* stats);

#ifdef __cplusplus
}
#endif

#endif /* RLHF_H */
