/* GAE and token statistics through librlhf.so.
 *   native/build.sh /tmp/rlhf && gcc native/examples/ppo_math.c -I native/include -L /tmp/rlhf -lrlhf \
 *     -Wl,-rpath,/tmp/rlhf -o /tmp/ppo_math && /tmp/ppo_math /tmp/rlhf */
#include <stdio.h>

#include "rlhf.h"

static int check(int status, const char* what)
{
    if (status != RLHF_OK) fprintf(stderr, "%s failed (%d): %s\n", what, status, rlhf_last_error());
    return status;
}

int main(int argc, char** argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s DIRECTORY_OF_Rlhf.Native.dll\n", argv[0]); return 2; }
    if (check(rlhf_init(argv[1]), "rlhf_init")) return 1;

    /* Two sequences of 4 tokens; the second is padded after 3. */
    enum { B = 2, T = 4 };
    const float rewards[B * T] = { 0.0f, 0.0f, 0.0f, 1.0f,   0.0f, 0.0f, -0.5f, 0.0f };
    const float values[B * T] = { 0.1f, 0.2f, 0.3f, 0.4f,   -0.1f, 0.0f, 0.2f, 9.0f };
    const float mask[B * T] = { 1, 1, 1, 1,   1, 1, 1, 0 };
    float advantages[B * T], returns[B * T];
    if (check(rlhf_gae(rewards, values, mask, B, T, 1.0f, 0.95f, advantages, returns), "rlhf_gae")) return 1;
    for (int i = 0; i < B * T; i++)
        printf("gae[%d,%d]: advantage %+.6f  return %+.6f\n", i / T, i % T, advantages[i], returns[i]);

    /* Three positions over a vocabulary of 5. */
    enum { N = 3, V = 5 };
    const float logits[N * V] = { 1, 2, 3, 4, 5,   0, 0, 0, 0, 0,   -1, 0.5f, 2, -3, 0 };
    const int32_t tokens[N] = { 4, 0, 2 };
    float log_probs[N], entropy[N], log_sum_exp[N];
    if (check(rlhf_token_statistics(logits, tokens, N, V, 1.0f, log_probs, entropy, log_sum_exp), "rlhf_token_statistics"))
        return 1;
    for (int i = 0; i < N; i++)
        printf("token %d: log p %.6f  entropy %.6f  logsumexp %.6f\n", i, log_probs[i], entropy[i], log_sum_exp[i]);

    /* A bad argument comes back as a status and a message, never a crash. */
    int status = rlhf_gae(rewards, values, mask, B, T, 1.5f, 0.95f, advantages, returns);
    printf("gamma = 1.5: status %d, %s\n", status, rlhf_last_error());
    return 0;
}
