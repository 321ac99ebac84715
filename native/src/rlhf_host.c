/*
 * librlhf.so: implements rlhf.h by hosting the .NET runtime (nethost + hostfxr, no NativeAOT) and forwarding every
 * call to an [UnmanagedCallersOnly] method of Rlhf.Native.NativeExports.
 */
#define _GNU_SOURCE /* PATH_MAX, dlopen under -std=c11 */
#include "rlhf.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <coreclr_delegates.h>
#include <hostfxr.h>
#include <nethost.h>

#define RLHF_API __attribute__((visibility("default")))
#define ERROR_CAPACITY 2048

/* Per-thread, like errno: the managed side keeps its own per-thread message and we copy it here on failure. */
static _Thread_local char last_error[ERROR_CAPACITY];

typedef int (*copy_last_error_fn)(char*, int);
typedef int (*token_statistics_fn)(const float*, const int32_t*, int32_t, int32_t, float, float*, float*, float*);
typedef int (*kl_full_fn)(const float*, const float*, int32_t, int32_t, float, float*);
typedef int (*kl_estimate_fn)(int32_t, const float*, const float*, int32_t, float*);
typedef int (*gae_fn)(const float*, const float*, const float*, int32_t, int32_t, float, float, float*, float*);
typedef int (*policy_loss_fn)(const float*, const float*, const float*, const float*, int32_t, int32_t, float, float,
                              float*, rlhf_policy_loss_stats*);
typedef int (*value_loss_fn)(const float*, const float*, const float*, const float*, int32_t, int32_t, float, float,
                             float*, rlhf_value_loss_stats*);

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
/* Written under init_lock before `ready` is released; read after an acquire load of `ready`. */
static int ready;
static copy_last_error_fn copy_last_error;
static token_statistics_fn token_statistics;
static kl_full_fn kl_full_vocabulary;
static kl_estimate_fn kl_estimate;
static gae_fn gae;
static policy_loss_fn policy_loss;
static value_loss_fn value_loss;

static int fail(int status, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(last_error, sizeof last_error, format, args);
    va_end(args);
    return status;
}

static int is_ready(void) { return __atomic_load_n(&ready, __ATOMIC_ACQUIRE); }

/* A nonzero managed status: fetch the managed message for this thread. */
static int forward(int status)
{
    if (status != RLHF_OK && copy_last_error(last_error, (int)sizeof last_error) == 0)
        snprintf(last_error, sizeof last_error, "rlhf: managed call failed with status %d and no message", status);
    return status;
}

#define REQUIRE_READY()                                                                                 \
    do {                                                                                                \
        if (!is_ready()) return fail(RLHF_E_RUNTIME, "rlhf: call rlhf_init(directory) first (or it failed)"); \
    } while (0)

static int resolve(load_assembly_and_get_function_pointer_fn load, const char* assembly, const char* method, void** target)
{
    int rc = load(assembly, "Rlhf.Native.NativeExports, Rlhf.Native", method, UNMANAGEDCALLERSONLY_METHOD, NULL, target);
    if (rc != 0 || *target == NULL)
        return fail(RLHF_E_RUNTIME, "rlhf_init: cannot resolve Rlhf.Native.NativeExports.%s in %s (hostfxr status 0x%x)",
                    method, assembly, (unsigned)rc);
    return RLHF_OK;
}

static int start_runtime(const char* directory)
{
    char assembly[PATH_MAX], config[PATH_MAX], hostfxr_path[PATH_MAX];
    if (snprintf(assembly, sizeof assembly, "%s/Rlhf.Native.dll", directory) >= (int)sizeof assembly
        || snprintf(config, sizeof config, "%s/Rlhf.Native.runtimeconfig.json", directory) >= (int)sizeof config)
        return fail(RLHF_E_ARGUMENT, "rlhf_init: directory is longer than PATH_MAX: %s", directory);

    size_t size = sizeof hostfxr_path;
    struct get_hostfxr_parameters parameters = { sizeof parameters, assembly, NULL };
    int rc = get_hostfxr_path(hostfxr_path, &size, &parameters);
    if (rc != 0)
        return fail(RLHF_E_RUNTIME, "rlhf_init: hostfxr not found (is the .NET 10 runtime installed? DOTNET_ROOT?) (0x%x)", (unsigned)rc);

    void* library = dlopen(hostfxr_path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return fail(RLHF_E_RUNTIME, "rlhf_init: cannot load %s: %s", hostfxr_path, dlerror());
    hostfxr_initialize_for_runtime_config_fn initialize =
        (hostfxr_initialize_for_runtime_config_fn)dlsym(library, "hostfxr_initialize_for_runtime_config");
    hostfxr_get_runtime_delegate_fn get_delegate = (hostfxr_get_runtime_delegate_fn)dlsym(library, "hostfxr_get_runtime_delegate");
    hostfxr_close_fn close_host = (hostfxr_close_fn)dlsym(library, "hostfxr_close");
    if (initialize == NULL || get_delegate == NULL || close_host == NULL)
        return fail(RLHF_E_RUNTIME, "rlhf_init: %s lacks the hosting exports", hostfxr_path);

    hostfxr_handle context = NULL;
    rc = initialize(config, NULL, &context);
    /* 1 and 2 are success codes: the runtime was already initialised (compatible config). */
    if (rc < 0 || rc > 2 || context == NULL)
    {
        if (context != NULL) close_host(context);
        return fail(RLHF_E_RUNTIME, "rlhf_init: cannot start the runtime from %s (hostfxr status 0x%x)", config, (unsigned)rc);
    }

    load_assembly_and_get_function_pointer_fn load = NULL;
    rc = get_delegate(context, hdt_load_assembly_and_get_function_pointer, (void**)&load);
    close_host(context);
    if (rc != 0 || load == NULL)
        return fail(RLHF_E_RUNTIME, "rlhf_init: no load_assembly_and_get_function_pointer delegate (hostfxr status 0x%x)", (unsigned)rc);

    if (resolve(load, assembly, "CopyLastError", (void**)&copy_last_error)
        || resolve(load, assembly, "TokenStatisticsCompute", (void**)&token_statistics)
        || resolve(load, assembly, "KlFullVocabulary", (void**)&kl_full_vocabulary)
        || resolve(load, assembly, "KlEstimate", (void**)&kl_estimate)
        || resolve(load, assembly, "GaeCompute", (void**)&gae)
        || resolve(load, assembly, "PolicyLossCompute", (void**)&policy_loss)
        || resolve(load, assembly, "ValueLossCompute", (void**)&value_loss))
        return RLHF_E_RUNTIME;
    return RLHF_OK;
}

RLHF_API int rlhf_init(const char* directory)
{
    if (directory == NULL) return fail(RLHF_E_ARGUMENT, "rlhf_init: directory is NULL");
    if (is_ready()) return RLHF_OK;
    pthread_mutex_lock(&init_lock);
    int status = is_ready() ? RLHF_OK : start_runtime(directory);
    if (status == RLHF_OK) __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&init_lock);
    return status;
}

RLHF_API const char* rlhf_last_error(void) { return last_error; }

RLHF_API int rlhf_token_statistics(const float* logits, const int32_t* tokens, int32_t rows, int32_t vocab, float temperature,
                                   float* log_probs, float* entropy, float* log_sum_exp)
{
    REQUIRE_READY();
    return forward(token_statistics(logits, tokens, rows, vocab, temperature, log_probs, entropy, log_sum_exp));
}

RLHF_API int rlhf_kl_full_vocabulary(const float* policy_logits, const float* reference_logits, int32_t rows, int32_t vocab,
                                     float temperature, float* kl)
{
    REQUIRE_READY();
    return forward(kl_full_vocabulary(policy_logits, reference_logits, rows, vocab, temperature, kl));
}

RLHF_API int rlhf_kl_estimate(int32_t estimator, const float* log_probs, const float* reference_log_probs, int32_t count, float* kl)
{
    REQUIRE_READY();
    return forward(kl_estimate(estimator, log_probs, reference_log_probs, count, kl));
}

RLHF_API int rlhf_gae(const float* rewards, const float* values, const float* mask, int32_t batch, int32_t steps,
                      float gamma, float lambda, float* advantages, float* returns)
{
    REQUIRE_READY();
    return forward(gae(rewards, values, mask, batch, steps, gamma, lambda, advantages, returns));
}

RLHF_API int rlhf_policy_loss(const float* new_log_probs, const float* old_log_probs, const float* advantages, const float* mask,
                              int32_t batch, int32_t steps, float clip_range, float gradient_scale,
                              float* grad_new_log_probs, rlhf_policy_loss_stats* stats)
{
    REQUIRE_READY();
    return forward(policy_loss(new_log_probs, old_log_probs, advantages, mask, batch, steps, clip_range, gradient_scale,
                               grad_new_log_probs, stats));
}

RLHF_API int rlhf_value_loss(const float* values, const float* old_values, const float* returns, const float* mask,
                             int32_t batch, int32_t steps, float clip_range, float gradient_scale,
                             float* grad_values, rlhf_value_loss_stats* stats)
{
    REQUIRE_READY();
    return forward(value_loss(values, old_values, returns, mask, batch, steps, clip_range, gradient_scale, grad_values, stats));
}
