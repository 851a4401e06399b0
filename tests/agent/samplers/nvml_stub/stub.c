/*
 * A scripted stand-in for libnvidia-ml.so.1, loaded by the real pynvml (nvidia-ml-py).
 *
 * Values come from the text file named by $NVML_STUB_SCRIPT, re-read whenever the file changes
 * (tests replace it atomically between samples). One `key=value` per line:
 *
 *   count=2                 driver=550.54.15          init_error=9 (nvmlInit fails with that code)
 *   0.name=NVIDIA H100 80GB HBM3   0.uuid=GPU-...
 *   0.gpu_util=50  0.mem_util=20  0.mem_total=85899345920  0.mem_used=1073741824
 *   0.power_mw=350000  0.temp_c=61  0.sm_clock=1980  0.mem_clock=2619
 *   0.clocks_event_reasons=4  0.energy_mj=123456789
 *   0.energy_rate_mw=400000      the energy counter grows by this many mJ per second (i.e. at this
 *                                power) of monotonic time since the library was loaded, on top of
 *                                energy_mj; 0 (default): the counter stays at energy_mj
 *   0.gpm=1  0.gpm_sm=40.5  0.gpm_tensor=12.5  0.gpm_dram=70.0
 *   0.unsupported=power,temp     fields that return NVML_ERROR_NOT_SUPPORTED
 *   0.lost_after=3               3 samples (utilisation reads) succeed; from the 4th, every call on
 *                                device 0 returns GPU_IS_LOST
 *
 * Field names for `unsupported`: util, memory, power, temp, sm_clock, mem_clock, clocks_event_reasons,
 * energy, gpm.  Build with -DSTUB_NO_ENERGY to leave nvmlDeviceGetTotalEnergyConsumption out of the
 * library (an old driver: pynvml raises FunctionNotFound).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

#define OK 0
#define E_UNINITIALIZED 1
#define E_INVALID_ARGUMENT 2
#define E_NOT_SUPPORTED 3
#define E_INSUFFICIENT_SIZE 7
#define E_GPU_IS_LOST 15
#define E_UNKNOWN 999

#define MAX_DEV 64

typedef struct {
    char name[96];
    char uuid[96];
    unsigned long long vals[16];
    double gpm_sm, gpm_tensor, gpm_dram;
    double energy_rate_mw;
    int gpm;
    char unsupported[256];
    long lost_after; /* -1: never */
} dev_t_;

enum { V_GPU_UTIL, V_MEM_UTIL, V_MEM_TOTAL, V_MEM_USED, V_POWER, V_TEMP, V_SM_CLOCK, V_MEM_CLOCK,
       V_REASONS, V_ENERGY, V_N };
static const char *val_keys[V_N] = {"gpu_util", "mem_util", "mem_total", "mem_used", "power_mw", "temp_c",
                                     "sm_clock", "mem_clock", "clocks_event_reasons", "energy_mj"};

static struct {
    int count;
    int init_error;
    char driver[80];
    dev_t_ dev[MAX_DEV];
} cfg;

static long util_reads[MAX_DEV]; /* survives reloads: a lost device stays lost */
static int initialised;
static struct stat last_st;
static int loaded;
static struct timespec origin; /* time zero of energy_rate_mw: when the library was loaded */

__attribute__((constructor)) static void set_origin(void) { clock_gettime(CLOCK_MONOTONIC, &origin); }

static double seconds_since_origin(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - origin.tv_sec) + (double)(now.tv_nsec - origin.tv_nsec) / 1e9;
}

static void parse(FILE *f) {
    memset(&cfg, 0, sizeof cfg);
    for (int i = 0; i < MAX_DEV; i++) cfg.dev[i].lost_after = -1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *key = line, *val = eq + 1;
        if (!strcmp(key, "count")) { cfg.count = atoi(val); continue; }
        if (!strcmp(key, "init_error")) { cfg.init_error = atoi(val); continue; }
        if (!strcmp(key, "driver")) { snprintf(cfg.driver, sizeof cfg.driver, "%s", val); continue; }
        char *dot = strchr(key, '.');
        if (!dot) continue;
        int i = atoi(key);
        if (i < 0 || i >= MAX_DEV) continue;
        dev_t_ *d = &cfg.dev[i];
        const char *field = dot + 1;
        if (!strcmp(field, "name")) snprintf(d->name, sizeof d->name, "%s", val);
        else if (!strcmp(field, "uuid")) snprintf(d->uuid, sizeof d->uuid, "%s", val);
        else if (!strcmp(field, "unsupported")) snprintf(d->unsupported, sizeof d->unsupported, ",%s,", val);
        else if (!strcmp(field, "lost_after")) d->lost_after = atol(val);
        else if (!strcmp(field, "gpm")) d->gpm = atoi(val);
        else if (!strcmp(field, "gpm_sm")) d->gpm_sm = atof(val);
        else if (!strcmp(field, "gpm_tensor")) d->gpm_tensor = atof(val);
        else if (!strcmp(field, "gpm_dram")) d->gpm_dram = atof(val);
        else if (!strcmp(field, "energy_rate_mw")) d->energy_rate_mw = atof(val);
        else
            for (int k = 0; k < V_N; k++)
                if (!strcmp(field, val_keys[k])) d->vals[k] = strtoull(val, NULL, 10);
    }
}

/* Re-read the script when the file changed (inode, size or mtime). */
static void reload(void) {
    const char *path = getenv("NVML_STUB_SCRIPT");
    struct stat st;
    if (!path || stat(path, &st) != 0) return;
    if (loaded && st.st_ino == last_st.st_ino && st.st_size == last_st.st_size &&
        st.st_mtim.tv_sec == last_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == last_st.st_mtim.tv_nsec)
        return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    parse(f);
    fclose(f);
    last_st = st;
    loaded = 1;
}

static int unsupported(const dev_t_ *d, const char *field) {
    char needle[64];
    snprintf(needle, sizeof needle, ",%s,", field);
    return strstr(d->unsupported, needle) != NULL;
}

/* Common entry for per-device calls: resolves the handle, applies `lost` and `unsupported`. */
static nvmlReturn_t dev_get(nvmlDevice_t h, const char *field, dev_t_ **out) {
    if (!initialised) return E_UNINITIALIZED;
    reload();
    intptr_t i = (intptr_t)h - 1;
    if (i < 0 || i >= cfg.count || i >= MAX_DEV) return E_INVALID_ARGUMENT;
    dev_t_ *d = &cfg.dev[i];
    if (d->lost_after >= 0 && util_reads[i] > d->lost_after) return E_GPU_IS_LOST;
    if (field && unsupported(d, field)) return E_NOT_SUPPORTED;
    *out = d;
    return OK;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    loaded = 0;
    reload();
    if (cfg.init_error) return cfg.init_error;
    initialised++;
    return OK;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    if (!initialised) return E_UNINITIALIZED;
    initialised--;
    return OK;
}

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case OK: return "Success";
    case E_UNINITIALIZED: return "Uninitialized";
    case E_INVALID_ARGUMENT: return "Invalid Argument";
    case E_NOT_SUPPORTED: return "Not Supported";
    case 9: return "Driver Not Loaded";
    case E_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *buf, unsigned int len) {
    if (!initialised) return E_UNINITIALIZED;
    reload();
    if (strlen(cfg.driver) + 1 > len) return E_INSUFFICIENT_SIZE;
    strcpy(buf, cfg.driver);
    return OK;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!initialised) return E_UNINITIALIZED;
    reload();
    *count = (unsigned int)cfg.count;
    return OK;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *h) {
    if (!initialised) return E_UNINITIALIZED;
    reload();
    if ((int)index >= cfg.count) return E_INVALID_ARGUMENT;
    *h = (nvmlDevice_t)(intptr_t)(index + 1);
    return OK;
}

static nvmlReturn_t copy_str(nvmlDevice_t h, const char *(*pick)(dev_t_ *), char *buf, unsigned int len) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, NULL, &d);
    if (r) return r;
    const char *s = pick(d);
    if (strlen(s) + 1 > len) return E_INSUFFICIENT_SIZE;
    strcpy(buf, s);
    return OK;
}
static const char *pick_name(dev_t_ *d) { return d->name; }
static const char *pick_uuid(dev_t_ *d) { return d->uuid; }

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t h, char *buf, unsigned int len) { return copy_str(h, pick_name, buf, len); }
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t h, char *buf, unsigned int len) { return copy_str(h, pick_uuid, buf, len); }

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t h, nvmlUtilization_t *u) {
    dev_t_ *d;
    intptr_t i = (intptr_t)h - 1;
    if (i >= 0 && i < MAX_DEV) util_reads[i]++; /* each utilisation read is one sample toward lost_after */
    nvmlReturn_t r = dev_get(h, "util", &d);
    if (r) return r;
    u->gpu = (unsigned int)d->vals[V_GPU_UTIL];
    u->memory = (unsigned int)d->vals[V_MEM_UTIL];
    return OK;
}

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t *m) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, "memory", &d);
    if (r) return r;
    m->total = d->vals[V_MEM_TOTAL];
    m->used = d->vals[V_MEM_USED];
    m->free = m->total - m->used;
    return OK;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t h, nvmlMemory_v2_t *m) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, "memory", &d);
    if (r) return r;
    m->total = d->vals[V_MEM_TOTAL];
    m->used = d->vals[V_MEM_USED];
    m->reserved = 0;
    m->free = m->total - m->used;
    return OK;
}

static nvmlReturn_t get_uint(nvmlDevice_t h, const char *field, int k, unsigned int *out) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, field, &d);
    if (r) return r;
    *out = (unsigned int)d->vals[k];
    return OK;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t h, unsigned int *mw) { return get_uint(h, "power", V_POWER, mw); }

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t h, int sensor, unsigned int *t) {
    if (sensor != 0) return E_INVALID_ARGUMENT; /* NVML_TEMPERATURE_GPU */
    return get_uint(h, "temp", V_TEMP, t);
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t h, int type, unsigned int *mhz) {
    if (type == 1) return get_uint(h, "sm_clock", V_SM_CLOCK, mhz);   /* NVML_CLOCK_SM */
    if (type == 2) return get_uint(h, "mem_clock", V_MEM_CLOCK, mhz); /* NVML_CLOCK_MEM */
    return E_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t h, unsigned long long *mask) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, "clocks_event_reasons", &d);
    if (r) return r;
    *mask = d->vals[V_REASONS];
    return OK;
}

#ifndef STUB_NO_ENERGY
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t h, unsigned long long *mj) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, "energy", &d);
    if (r) return r;
    *mj = d->vals[V_ENERGY] + (unsigned long long)(d->energy_rate_mw * seconds_since_origin());
    return OK;
}
#endif

/* ---- GPM (Hopper+) ---- */
typedef struct { unsigned int version, isSupportedDevice; } nvmlGpmSupport_t;
typedef struct { int dev; } gpm_sample_t;
typedef struct { char *shortName, *longName, *unit; } nvmlGpmMetricInfo_t;
typedef struct { unsigned int metricId; nvmlReturn_t nvmlReturn; double value; nvmlGpmMetricInfo_t info; } nvmlGpmMetric_t;
typedef struct {
    unsigned int version, numMetrics;
    gpm_sample_t *sample1, *sample2;
    nvmlGpmMetric_t metrics[477];
} nvmlGpmMetricsGet_t;

nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t h, nvmlGpmSupport_t *s) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, NULL, &d);
    if (r) return r;
    s->isSupportedDevice = d->gpm && !unsupported(d, "gpm");
    return OK;
}

nvmlReturn_t nvmlGpmSampleAlloc(gpm_sample_t **s) {
    *s = calloc(1, sizeof **s);
    (*s)->dev = -1;
    return *s ? OK : E_UNKNOWN;
}

nvmlReturn_t nvmlGpmSampleFree(gpm_sample_t *s) {
    free(s);
    return OK;
}

nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t h, gpm_sample_t *s) {
    dev_t_ *d;
    nvmlReturn_t r = dev_get(h, "gpm", &d);
    if (r) return r;
    if (!d->gpm) return E_NOT_SUPPORTED;
    s->dev = (int)((intptr_t)h - 1);
    return OK;
}

nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *m) {
    if (!initialised) return E_UNINITIALIZED;
    if (m->version != 1 || !m->sample1 || !m->sample2 || m->sample1->dev < 0 ||
        m->sample1->dev != m->sample2->dev || m->numMetrics > 477)
        return E_INVALID_ARGUMENT;
    reload();
    dev_t_ *d = &cfg.dev[m->sample1->dev];
    for (unsigned int i = 0; i < m->numMetrics; i++) {
        nvmlGpmMetric_t *x = &m->metrics[i];
        x->nvmlReturn = OK;
        switch (x->metricId) {
        case 2: x->value = d->gpm_sm; break;     /* NVML_GPM_METRIC_SM_UTIL */
        case 5: x->value = d->gpm_tensor; break; /* NVML_GPM_METRIC_ANY_TENSOR_UTIL */
        case 10: x->value = d->gpm_dram; break;  /* NVML_GPM_METRIC_DRAM_BW_UTIL */
        default: x->nvmlReturn = E_NOT_SUPPORTED;
        }
    }
    return OK;
}
