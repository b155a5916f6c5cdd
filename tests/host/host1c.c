/*
 * host1c: a stand-in for the 1C:Enterprise host, for tests and benchmarks.
 *
 * Loads a Native API add-in exactly like 1C does (dlopen/LoadLibrary, GetClassNames,
 * GetClassObject, vtable calls with the per-OS destructor slots), implements the host side
 * (a memory manager that tracks every allocation, AddError and ExternalEvent recorders) and runs
 * a script of calls, one per line, from a file or stdin. Every command prints one JSON line.
 *
 *   host1c LIBRARY [SCRIPT]
 *
 * Exit status: 0 when the script ran and every host allocation handed to the host was freed
 * exactly once; 3 when memory was leaked or freed twice; 2 for usage or load errors.
 * The same source builds with mingw for Windows and runs under Wine.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _WIN32
#include <windows.h>
#define CALLCONV __stdcall
#define DTOR_SLOTS 1
typedef CRITICAL_SECTION lock_t;
#define LOCK_INIT(l) InitializeCriticalSection(l)
#define LOCK(l) EnterCriticalSection(l)
#define UNLOCK(l) LeaveCriticalSection(l)
#else
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>
#define CALLCONV
#define DTOR_SLOTS 2
typedef pthread_mutex_t lock_t;
#define LOCK_INIT(l) pthread_mutex_init(l, NULL)
#define LOCK(l) pthread_mutex_lock(l)
#define UNLOCK(l) pthread_mutex_unlock(l)
#endif

typedef uint16_t WCHAR_T;

/* ---- tVariant, as 1C's types.h lays it out ------------------------------------------------ */
enum {
    VTYPE_EMPTY = 0, VTYPE_NULL, VTYPE_I2, VTYPE_I4, VTYPE_R4, VTYPE_R8, VTYPE_DATE, VTYPE_TM,
    VTYPE_PSTR, VTYPE_INTERFACE, VTYPE_ERROR, VTYPE_BOOL, VTYPE_VARIANT, VTYPE_I1, VTYPE_UI1,
    VTYPE_UI2, VTYPE_UI4, VTYPE_I8, VTYPE_UI8, VTYPE_INT, VTYPE_UINT, VTYPE_HRESULT, VTYPE_PWSTR,
    VTYPE_BLOB, VTYPE_CLSID
};

typedef struct { uint32_t d1; uint16_t d2, d3; uint8_t d4[8]; } IID_;

typedef struct tVariant {
    union {
        int8_t i8Val; int16_t shortVal; int32_t lVal; int intVal; unsigned int uintVal;
        int64_t llVal; uint8_t ui8Val; uint16_t ushortVal; uint32_t ulVal; uint64_t ullVal;
        int32_t errCode; long hRes; float fltVal; double dblVal; bool bVal; char chVal;
        double date; IID_ IDVal; struct tVariant* pvarVal; struct tm tmVal;
        struct { void* pInterfaceVal; IID_ InterfaceID; } iface;
        struct { char* pstrVal; uint32_t strLen; } s;
        struct { WCHAR_T* pwstrVal; uint32_t wstrLen; } w;
    } u;
    uint32_t cbElements;
    uint16_t vt;
} tVariant;

#if defined(_WIN32)
_Static_assert(sizeof(tVariant) == 48, "tVariant must be 48 bytes on Windows");
#elif defined(__x86_64__)
_Static_assert(sizeof(tVariant) == 64, "tVariant must be 64 bytes on Linux x86_64");
#endif

/* ---- output ------------------------------------------------------------------------------- */
static lock_t print_lock;
static int quiet = 0; /* inside `repeat`: only the summary is printed */

/* `n` bytes of UTF-8 as a JSON string; a NUL inside is written as \u0000, not an end. */
static void json_utf8_n(FILE* f, const char* s, size_t n) {
    fputc('"', f);
    for (const char* e = s + n; s < e; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { fputc('\\', f); fputc(c, f); }
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void json_utf8(FILE* f, const char* s) { json_utf8_n(f, s, strlen(s)); }

/* UTF-16 to UTF-8 for printing (its length in *len); lone surrogates become U+FFFD (they never
 * should appear). */
static char* utf16_to_utf8_len(const WCHAR_T* w, size_t n, size_t* len) {
    char* out = malloc(n * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = w[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < n && w[i + 1] >= 0xDC00 && w[i + 1] < 0xE000) {
            c = 0x10000 + ((c - 0xD800) << 10) + (w[i + 1] - 0xDC00);
            i++;
        } else if (c >= 0xD800 && c < 0xE000) {
            c = 0xFFFD;
        }
        if (c < 0x80) out[o++] = (char)c;
        else if (c < 0x800) { out[o++] = (char)(0xC0 | (c >> 6)); out[o++] = (char)(0x80 | (c & 0x3F)); }
        else if (c < 0x10000) {
            out[o++] = (char)(0xE0 | (c >> 12)); out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            out = realloc(out, n * 3 + 5 + o);
            out[o++] = (char)(0xF0 | (c >> 18)); out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F)); out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[o] = 0;
    *len = o;
    return out;
}

static char* utf16_to_utf8(const WCHAR_T* w, size_t n) { size_t len; return utf16_to_utf8_len(w, n, &len); }

static size_t wlen(const WCHAR_T* w) { size_t n = 0; while (w && w[n]) n++; return n; }

static void json_wstr(FILE* f, const WCHAR_T* w, size_t n) {
    if (!w) { fputs("null", f); return; }
    size_t len;
    char* s = utf16_to_utf8_len(w, n, &len);
    json_utf8_n(f, s, len);
    free(s);
}

/* ---- the tracked memory manager ------------------------------------------------------------ */
/* Live allocations in an open-addressing set; every pointer handed over must come back once. */
static lock_t mem_lock;
static void** live = NULL;
/* live_used counts tombstones too: a table full of them would make every probe endless. */
static size_t live_cap = 0, live_count = 0, live_used = 0;
static unsigned long long n_allocs = 0, n_frees = 0, n_bad_frees = 0;

static size_t slot_of(void* p, size_t cap) { return ((uintptr_t)p >> 4) * 2654435761u % cap; }

static void live_grow(void) {
    /* Rehash: drops tombstones, and doubles only when live entries need it. */
    size_t cap = !live_cap ? 1024 : (live_count + 1) * 4 > live_cap ? live_cap * 2 : live_cap;
    void** t = calloc(cap, sizeof(void*));
    for (size_t i = 0; i < live_cap; i++) {
        if (live[i] && live[i] != (void*)1) {
            size_t j = slot_of(live[i], cap);
            while (t[j]) j = (j + 1) % cap;
            t[j] = live[i];
        }
    }
    free(live);
    live = t;
    live_cap = cap;
    live_used = live_count;
}

static void live_add(void* p) {
    if ((live_used + 1) * 2 > live_cap) live_grow();
    size_t j = slot_of(p, live_cap);
    while (live[j] && live[j] != (void*)1) j = (j + 1) % live_cap;
    if (!live[j]) live_used++;
    live[j] = p;
    live_count++;
}

static bool live_remove(void* p) {
    if (!live_cap) return false;
    size_t j = slot_of(p, live_cap);
    while (live[j]) {
        if (live[j] == p) { live[j] = (void*)1; live_count--; return true; }
        j = (j + 1) % live_cap;
    }
    return false;
}

typedef struct {
    void* dtors[DTOR_SLOTS];
    bool(CALLCONV* AllocMemory)(void* self, void** p, unsigned long bytes);
    void(CALLCONV* FreeMemory)(void* self, void** p);
} MemVtbl;
typedef struct { const MemVtbl* vt; } MemManager;

static bool CALLCONV mem_alloc(void* self, void** p, unsigned long bytes) {
    (void)self;
    if (!p) return false;
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return false;
    LOCK(&mem_lock);
    live_add(*p);
    n_allocs++;
    UNLOCK(&mem_lock);
    return true;
}

static void CALLCONV mem_free(void* self, void** p) {
    (void)self;
    if (!p || !*p) return;
    LOCK(&mem_lock);
    bool ok = live_remove(*p);
    if (ok) n_frees++; else n_bad_frees++;
    UNLOCK(&mem_lock);
    if (ok) free(*p);
    *p = NULL;
}

static void CALLCONV dummy_dtor(void* self) { (void)self; }
static const MemVtbl mem_vtbl = {{DTOR_SLOTS == 2 ? (void*)dummy_dtor : (void*)dummy_dtor
#if DTOR_SLOTS == 2
                                  , (void*)dummy_dtor
#endif
                                 }, mem_alloc, mem_free};
static MemManager mem_manager = {&mem_vtbl};

/* ---- IAddInDefBase: error and event recorders --------------------------------------------- */
static char* last_add_error = NULL;
static unsigned long long n_add_errors = 0, n_events = 0;
static long event_depth = 1;

static bool CALLCONV h_add_error(void* self, unsigned short code, const WCHAR_T* src, const WCHAR_T* descr, long scode) {
    (void)self; (void)scode;
    free(last_add_error);
    last_add_error = descr ? utf16_to_utf8(descr, wlen(descr)) : strdup("(NULL description)");
    n_add_errors++;
    if (code < 1000 || code > 1009 || !src) {
        LOCK(&print_lock);
        printf("{\"cmd\":\"host-warning\",\"message\":\"AddError with bad code %u or NULL source\"}\n", code);
        UNLOCK(&print_lock);
    }
    return true;
}
static bool CALLCONV h_read(void* s, WCHAR_T* a, tVariant* b, long* c, WCHAR_T** d) { (void)s; (void)a; (void)b; (void)c; (void)d; return false; }
static bool CALLCONV h_write(void* s, WCHAR_T* a, tVariant* b) { (void)s; (void)a; (void)b; return false; }
static bool CALLCONV h_register_profile_as(void* s, WCHAR_T* a) { (void)s; (void)a; return false; }
static bool CALLCONV h_set_event_buffer_depth(void* s, long depth) { (void)s; event_depth = depth; return true; }
static long CALLCONV h_get_event_buffer_depth(void* s) { (void)s; return event_depth; }
static bool CALLCONV h_external_event(void* s, WCHAR_T* src, WCHAR_T* msg, WCHAR_T* data) {
    (void)s;
    LOCK(&print_lock);
    n_events++;
    if (!quiet) {
        printf("{\"cmd\":\"event\",\"source\":"); json_wstr(stdout, src, wlen(src));
        printf(",\"message\":"); json_wstr(stdout, msg, wlen(msg));
        printf(",\"data\":"); json_wstr(stdout, data, wlen(data));
        printf("}\n");
        fflush(stdout);
    }
    UNLOCK(&print_lock);
    return true;
}
static void CALLCONV h_clean_event_buffer(void* s) { (void)s; }
static bool CALLCONV h_set_status_line(void* s, WCHAR_T* a) { (void)s; (void)a; return true; }
static void CALLCONV h_reset_status_line(void* s) { (void)s; }

typedef struct {
    void* dtors[DTOR_SLOTS];
    void* fns[10];
} HostVtbl;
static const HostVtbl host_vtbl = {{(void*)dummy_dtor
#if DTOR_SLOTS == 2
                                    , (void*)dummy_dtor
#endif
                                   },
                                   {(void*)h_add_error, (void*)h_read, (void*)h_write, (void*)h_register_profile_as,
                                    (void*)h_set_event_buffer_depth, (void*)h_get_event_buffer_depth,
                                    (void*)h_external_event, (void*)h_clean_event_buffer, (void*)h_set_status_line,
                                    (void*)h_reset_status_line}};
typedef struct { const HostVtbl* vt; } HostObj;
static HostObj host_obj = {&host_vtbl};

/* ---- the component's interfaces, as the host sees them ------------------------------------ */
typedef struct {
    void* dtors[DTOR_SLOTS];
    bool(CALLCONV* Init)(void*, void*);
    bool(CALLCONV* setMemManager)(void*, void*);
    long(CALLCONV* GetInfo)(void*);
    void(CALLCONV* Done)(void*);
} InitDoneVtbl;

typedef struct {
    void* dtors[DTOR_SLOTS];
    bool(CALLCONV* RegisterExtensionAs)(void*, WCHAR_T**);
    long(CALLCONV* GetNProps)(void*);
    long(CALLCONV* FindProp)(void*, const WCHAR_T*);
    const WCHAR_T*(CALLCONV* GetPropName)(void*, long, long);
    bool(CALLCONV* GetPropVal)(void*, long, tVariant*);
    bool(CALLCONV* SetPropVal)(void*, long, tVariant*);
    bool(CALLCONV* IsPropReadable)(void*, long);
    bool(CALLCONV* IsPropWritable)(void*, long);
    long(CALLCONV* GetNMethods)(void*);
    long(CALLCONV* FindMethod)(void*, const WCHAR_T*);
    const WCHAR_T*(CALLCONV* GetMethodName)(void*, long, long);
    long(CALLCONV* GetNParams)(void*, long);
    bool(CALLCONV* GetParamDefValue)(void*, long, long, tVariant*);
    bool(CALLCONV* HasRetVal)(void*, long);
    bool(CALLCONV* CallAsProc)(void*, long, tVariant*, long);
    bool(CALLCONV* CallAsFunc)(void*, long, tVariant*, tVariant*, long);
} LangVtbl;

typedef struct {
    void* dtors[DTOR_SLOTS];
    void(CALLCONV* Set)(void*, const WCHAR_T*);
} LocaleVtbl;

typedef const WCHAR_T* (*GetClassNamesFn)(void);
typedef long (*GetClassObjectFn)(const WCHAR_T*, void**);
typedef long (*DestroyObjectFn)(void**);
typedef int (*SetPlatformCapabilitiesFn)(int);
typedef int (*GetAttachTypeFn)(void);

static GetClassNamesFn p_GetClassNames;
static GetClassObjectFn p_GetClassObject;
static DestroyObjectFn p_DestroyObject;
static SetPlatformCapabilitiesFn p_SetPlatformCapabilities;
static GetAttachTypeFn p_GetAttachType;

#define IFACE(obj, k) ((void*)((char*)(obj) + (k) * sizeof(void*)))
#define INITDONE(obj) (*(const InitDoneVtbl**)IFACE(obj, 0))
#define LANG(obj) (*(const LangVtbl**)IFACE(obj, 1))
#define LOCALE(obj) (*(const LocaleVtbl**)IFACE(obj, 2))
#define USERLANG(obj) (*(const LocaleVtbl**)IFACE(obj, 3))

#define MAX_OBJECTS 4096
static void* objects[MAX_OBJECTS];
static int n_objects = 0, current = -1;
static WCHAR_T class_name[256];

/* ---- small helpers -------------------------------------------------------------------------- */
static double now_ns(void) {
#ifdef _WIN32
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart * 1e9 / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
#endif
}

static WCHAR_T* wdup_ascii_utf8(const char* s) {
    /* UTF-8 to a NUL-terminated UTF-16 string (malloc'd). */
    size_t n = strlen(s);
    WCHAR_T* w = malloc((n + 1) * sizeof(WCHAR_T) * 2);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        if (c < 0x80) { cp = c; i += 1; }
        else if ((c >> 5) == 6 && i + 1 < n) { cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F); i += 2; }
        else if ((c >> 4) == 14 && i + 2 < n) { cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F); i += 3; }
        else if (i + 3 < n) { cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F); i += 4; }
        else { cp = 0xFFFD; i += 1; }
        if (cp >= 0x10000) { cp -= 0x10000; w[o++] = (WCHAR_T)(0xD800 + (cp >> 10)); w[o++] = (WCHAR_T)(0xDC00 + (cp & 0x3FF)); }
        else w[o++] = (WCHAR_T)cp;
    }
    w[o] = 0;
    return w;
}

/* Frees what the add-in wrote into a variant, as 1C does after reading it. */
static void release_variant(tVariant* v) {
    if (v->vt == VTYPE_PWSTR && v->u.w.pwstrVal) { void* p = v->u.w.pwstrVal; mem_free(&mem_manager, &p); }
    if ((v->vt == VTYPE_PSTR || v->vt == VTYPE_BLOB) && v->u.s.pstrVal) { void* p = v->u.s.pstrVal; mem_free(&mem_manager, &p); }
    memset(v, 0, sizeof(*v));
}

static void print_variant(FILE* f, const tVariant* v) {
    switch (v->vt) {
    case VTYPE_EMPTY: fprintf(f, "{\"type\":\"Undefined\"}"); break;
    case VTYPE_NULL: fprintf(f, "{\"type\":\"Null\"}"); break;
    case VTYPE_BOOL: fprintf(f, "{\"type\":\"Boolean\",\"value\":%s}", v->u.bVal ? "true" : "false"); break;
    case VTYPE_I2: fprintf(f, "{\"type\":\"Number\",\"vt\":2,\"value\":%d}", v->u.shortVal); break;
    case VTYPE_I4: fprintf(f, "{\"type\":\"Number\",\"vt\":3,\"value\":%d}", (int)v->u.lVal); break;
    case VTYPE_I8: fprintf(f, "{\"type\":\"Number\",\"vt\":17,\"value\":%lld}", (long long)v->u.llVal); break;
    case VTYPE_R8: {
        double d = v->u.dblVal;
        if (d == (double)(long long)d && d < 9.3e18 && d > -9.3e18)
            fprintf(f, "{\"type\":\"Number\",\"vt\":5,\"value\":%lld}", (long long)d);
        else
            fprintf(f, "{\"type\":\"Number\",\"vt\":5,\"value\":%.17g}", d);
        break;
    }
    case VTYPE_TM:
        fprintf(f, "{\"type\":\"Date\",\"value\":\"%04d-%02d-%02dT%02d:%02d:%02d\"}", v->u.tmVal.tm_year + 1900,
                v->u.tmVal.tm_mon + 1, v->u.tmVal.tm_mday, v->u.tmVal.tm_hour, v->u.tmVal.tm_min, v->u.tmVal.tm_sec);
        break;
    case VTYPE_PWSTR:
        fprintf(f, "{\"type\":\"String\",\"value\":");
        json_wstr(f, v->u.w.pwstrVal ? v->u.w.pwstrVal : (const WCHAR_T*)L"", v->u.w.pwstrVal ? v->u.w.wstrLen : 0);
        fprintf(f, "}");
        break;
    case VTYPE_BLOB:
        fprintf(f, "{\"type\":\"BinaryData\",\"hex\":\"");
        for (uint32_t i = 0; i < v->u.s.strLen; i++) fprintf(f, "%02x", (unsigned char)v->u.s.pstrVal[i]);
        fprintf(f, "\"}");
        break;
    default: fprintf(f, "{\"type\":\"vt%u\"}", v->vt); break;
    }
}

/* ---- script parsing ------------------------------------------------------------------------ */
#define MAX_ARGS 32
/* `default` in a call: an argument BSL omitted (`f(a, , c)`), filled like 1C through
 * GetParamDefValue before the call; never handed to the add-in as a variant type. */
#define VT_OMITTED 0xFFFF

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static const char* skip_ws(const char* p) { while (*p == ' ' || *p == '\t') p++; return p; }

/* Reads a double-quoted string with \" \\ \n \t \r \uXXXX (a raw UTF-16 unit, so lone
 * surrogates can be sent) into UTF-16 units. Returns the position after it or NULL. */
static const char* parse_wstring(const char* p, WCHAR_T** out, uint32_t* len) {
    if (*p != '"') return NULL;
    p++;
    size_t cap = strlen(p) + 1, n = 0;
    WCHAR_T* w = malloc(cap * sizeof(WCHAR_T) * 2);
    char buf[8];
    while (*p && *p != '"') {
        if (*p == '\\') {
            p++;
            switch (*p) {
            case 'n': w[n++] = '\n'; p++; break;
            case 't': w[n++] = '\t'; p++; break;
            case 'r': w[n++] = '\r'; p++; break;
            case 'u': {
                int v = 0;
                for (int k = 1; k <= 4; k++) { int h = hexval(p[k]); if (h < 0) { free(w); return NULL; } v = v * 16 + h; }
                w[n++] = (WCHAR_T)v;
                p += 5;
                break;
            }
            case 0: free(w); return NULL;
            default: w[n++] = (unsigned char)*p; p++; break;
            }
        } else {
            /* one UTF-8 character */
            int l = 1;
            unsigned char c = (unsigned char)*p;
            if (c >= 0xF0) l = 4; else if (c >= 0xE0) l = 3; else if (c >= 0xC0) l = 2;
            memcpy(buf, p, l);
            buf[l] = 0;
            WCHAR_T* t = wdup_ascii_utf8(buf);
            for (size_t k = 0; t[k]; k++) w[n++] = t[k];
            free(t);
            p += l;
        }
    }
    if (*p != '"') { free(w); return NULL; }
    *out = w;
    *len = (uint32_t)n;
    return p + 1;
}

/* Parses one argument into a variant whose strings come from the host memory manager (as 1C's
 * do), so the add-in may legitimately free or replace them. */
static const char* parse_value(const char* p, tVariant* v, char* err) {
    memset(v, 0, sizeof(*v));
    p = skip_ws(p);
    if (*p == '"') {
        WCHAR_T* w; uint32_t n;
        const char* q = parse_wstring(p, &w, &n);
        if (!q) { strcpy(err, "bad string literal"); return NULL; }
        void* mem;
        mem_alloc(&mem_manager, &mem, (n + 1) * sizeof(WCHAR_T));
        memcpy(mem, w, n * sizeof(WCHAR_T));
        ((WCHAR_T*)mem)[n] = 0;
        free(w);
        v->vt = VTYPE_PWSTR; v->u.w.pwstrVal = mem; v->u.w.wstrLen = n;
        return q;
    }
    if (p[0] == 'x' && p[1] == '"') {
        p += 2;
        const char* e = strchr(p, '"');
        if (!e || (e - p) % 2) { strcpy(err, "bad binary literal"); return NULL; }
        size_t n = (size_t)(e - p) / 2;
        void* mem;
        mem_alloc(&mem_manager, &mem, n ? n : 1);
        for (size_t i = 0; i < n; i++) {
            int h = hexval(p[2 * i]), l = hexval(p[2 * i + 1]);
            if (h < 0 || l < 0) { strcpy(err, "bad hex digit"); mem_free(&mem_manager, &mem); return NULL; }
            ((unsigned char*)mem)[i] = (unsigned char)(h * 16 + l);
        }
        v->vt = VTYPE_BLOB; v->u.s.pstrVal = mem; v->u.s.strLen = (uint32_t)n;
        return e + 1;
    }
    if (p[0] == 'd' && p[1] == '"') {
        int Y, M, D, h = 0, m = 0, s = 0;
        if (sscanf(p + 2, "%d-%d-%d%*[ T]%d:%d:%d", &Y, &M, &D, &h, &m, &s) < 3) { strcpy(err, "bad date"); return NULL; }
        const char* e = strchr(p + 2, '"');
        if (!e) { strcpy(err, "bad date"); return NULL; }
        v->vt = VTYPE_TM;
        v->u.tmVal.tm_year = Y - 1900; v->u.tmVal.tm_mon = M - 1; v->u.tmVal.tm_mday = D;
        v->u.tmVal.tm_hour = h; v->u.tmVal.tm_min = m; v->u.tmVal.tm_sec = s;
        return e + 1;
    }
    if (!strncmp(p, "true", 4)) { v->vt = VTYPE_BOOL; v->u.bVal = true; return p + 4; }
    if (!strncmp(p, "false", 5)) { v->vt = VTYPE_BOOL; v->u.bVal = false; return p + 5; }
    if (!strncmp(p, "undefined", 9)) { v->vt = VTYPE_EMPTY; return p + 9; }
    if (!strncmp(p, "default", 7)) { v->vt = VT_OMITTED; return p + 7; }
    if (!strncmp(p, "null", 4)) { v->vt = VTYPE_NULL; return p + 4; }
    if (!strncmp(p, "vt", 2)) { /* vtNN: a bare variant of an unsupported type */
        char* e; long t = strtol(p + 2, &e, 10);
        v->vt = (uint16_t)t;
        return e;
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char* e;
        double d = strtod(p, &e);
        if (e == p) { strcpy(err, "bad number"); return NULL; }
        /* 1C passes whole numbers that fit as I4 and everything else as R8. */
        if (d == (double)(int32_t)d && !memchr(p, '.', (size_t)(e - p))) { v->vt = VTYPE_I4; v->u.lVal = (int32_t)d; }
        else { v->vt = VTYPE_R8; v->u.dblVal = d; }
        return e;
    }
    sprintf(err, "cannot parse argument at: %.20s", p);
    return NULL;
}

static int parse_args(const char* p, tVariant* args, char* err) {
    int n = 0;
    for (;;) {
        p = skip_ws(p);
        if (!*p || *p == '\n' || *p == '\r') return n;
        if (n == MAX_ARGS) { strcpy(err, "too many arguments"); return -1; }
        p = parse_value(p, &args[n], err);
        if (!p) { for (int i = 0; i < n; i++) release_variant(&args[i]); return -1; }
        n++;
    }
}

static const char* word(const char* p, char* out, size_t cap) {
    p = skip_ws(p);
    size_t n = 0;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') { if (n + 1 < cap) out[n++] = *p; p++; }
    out[n] = 0;
    return p;
}

/* ---- commands ------------------------------------------------------------------------------- */
static void* cur(void) { return current >= 0 ? objects[current] : NULL; }

static void begin(const char* cmd) {
    if (quiet) return;
    LOCK(&print_lock);
    printf("{\"cmd\":"); json_utf8(stdout, cmd);
}
static void end(void) {
    if (quiet) return;
    printf("}\n");
    fflush(stdout);
    UNLOCK(&print_lock);
}
static void fail_line(const char* cmd, const char* message) {
    begin(cmd);
    if (!quiet) { printf(",\"ok\":false,\"host_error\":"); json_utf8(stdout, message); }
    end();
}

static bool create_object(bool init_first, bool with_mem) {
    void* obj = NULL;
    if (!p_GetClassObject(class_name, &obj) || !obj) return false;
    if (init_first) INITDONE(obj)->Init(IFACE(obj, 0), &host_obj);
    if (with_mem) INITDONE(obj)->setMemManager(IFACE(obj, 0), &mem_manager);
    if (!init_first) INITDONE(obj)->Init(IFACE(obj, 0), &host_obj);
    if (n_objects == MAX_OBJECTS) return false;
    objects[n_objects] = obj;
    current = n_objects++;
    return true;
}

static long destroy_object(int i, bool via_dtor) {
    void* obj = objects[i];
    if (!obj) return -1;
    INITDONE(obj)->Done(IFACE(obj, 0));
    long rc = 0;
    if (via_dtor) {
        /* OneScript-style: delete through the virtual destructor of the first interface. */
#ifdef _WIN32
#ifdef _M_IX86
        ((void*(__thiscall*)(void*, unsigned))INITDONE(obj)->dtors[0])(obj, 1);
#else
        ((void*(*)(void*, unsigned))INITDONE(obj)->dtors[0])(obj, 1);
#endif
#else
        ((void (*)(void*))INITDONE(obj)->dtors[1])(obj);
#endif
    } else {
        rc = p_DestroyObject(&objects[i]);
    }
    objects[i] = NULL;
    if (current == i) current = -1;
    return rc;
}

static void cmd_new(const char* rest) {
    char opt[64];
    word(rest, opt, sizeof opt);
    bool init_first = !strcmp(opt, "init-first");
    bool ok = create_object(init_first, strcmp(opt, "no-mem") != 0);
    begin("new");
    if (quiet) return;
    if (!ok) { printf(",\"ok\":false"); end(); return; }
    void* obj = cur();
    WCHAR_T* ext = NULL;
    bool reg = LANG(obj)->RegisterExtensionAs(IFACE(obj, 1), &ext);
    printf(",\"ok\":true,\"object\":%d,\"info\":%ld,\"registered\":%s,\"extension\":", current,
           INITDONE(obj)->GetInfo(IFACE(obj, 0)), reg ? "true" : "false");
    json_wstr(stdout, ext, wlen(ext));
    if (ext) { void* p = ext; mem_free(&mem_manager, &p); }
    end();
}

static void print_last_error(void) {
    if (last_add_error) { printf(",\"error\":"); json_utf8(stdout, last_add_error); }
}

static void reset_error(void) { free(last_add_error); last_add_error = NULL; }

static void cmd_get(const char* rest) {
    char name[256];
    word(rest, name, sizeof name);
    void* obj = cur();
    if (!obj) { fail_line("get", "no current object"); return; }
    WCHAR_T* w = wdup_ascii_utf8(name);
    long idx = LANG(obj)->FindProp(IFACE(obj, 1), w);
    free(w);
    reset_error();
    tVariant v;
    memset(&v, 0, sizeof v);
    bool ok = idx >= 0 && LANG(obj)->IsPropReadable(IFACE(obj, 1), idx) && LANG(obj)->GetPropVal(IFACE(obj, 1), idx, &v);
    begin("get");
    if (!quiet) {
        printf(",\"prop\":"); json_utf8(stdout, name);
        printf(",\"index\":%ld,\"ok\":%s,\"value\":", idx, ok ? "true" : "false");
        print_variant(stdout, &v);
        print_last_error();
    }
    end();
    release_variant(&v);
}

static void cmd_set(const char* rest) {
    char name[256], err[128] = "";
    const char* p = word(rest, name, sizeof name);
    void* obj = cur();
    if (!obj) { fail_line("set", "no current object"); return; }
    tVariant v;
    if (!parse_value(p, &v, err)) { fail_line("set", err); return; }
    WCHAR_T* w = wdup_ascii_utf8(name);
    long idx = LANG(obj)->FindProp(IFACE(obj, 1), w);
    free(w);
    reset_error();
    bool ok = LANG(obj)->SetPropVal(IFACE(obj, 1), idx, &v);
    begin("set");
    if (!quiet) { printf(",\"prop\":"); json_utf8(stdout, name); printf(",\"ok\":%s", ok ? "true" : "false"); print_last_error(); }
    end();
    release_variant(&v);
}

/* call/proc NAME args...: like 1C, fills omitted trailing arguments via GetParamDefValue. */
static void cmd_call(const char* cmdname, const char* rest, bool force_proc) {
    char name[256], err[128] = "";
    const char* p = word(rest, name, sizeof name);
    void* obj = cur();
    if (!obj) { fail_line(cmdname, "no current object"); return; }
    tVariant args[MAX_ARGS];
    memset(args, 0, sizeof args);
    int given = parse_args(p, args, err);
    if (given < 0) { fail_line(cmdname, err); return; }
    WCHAR_T* w = wdup_ascii_utf8(name);
    long m = LANG(obj)->FindMethod(IFACE(obj, 1), w);
    free(w);
    long nparams = m >= 0 ? LANG(obj)->GetNParams(IFACE(obj, 1), m) : 0;
    long n = given > nparams ? given : nparams;
    for (long i = 0; i < n; i++) {
        if (i < given && args[i].vt != VT_OMITTED) continue;
        memset(&args[i], 0, sizeof args[i]);
        if (!LANG(obj)->GetParamDefValue(IFACE(obj, 1), m, i, &args[i])) memset(&args[i], 0, sizeof args[i]);
    }
    reset_error();
    tVariant ret;
    memset(&ret, 0, sizeof ret);
    bool has_ret = m >= 0 && LANG(obj)->HasRetVal(IFACE(obj, 1), m);
    double t0 = now_ns();
    bool ok = (has_ret && !force_proc) ? LANG(obj)->CallAsFunc(IFACE(obj, 1), m, &ret, n ? args : NULL, n)
                                        : LANG(obj)->CallAsProc(IFACE(obj, 1), m, n ? args : NULL, n);
    double dt = now_ns() - t0;
    begin(cmdname);
    if (!quiet) {
        printf(",\"method\":"); json_utf8(stdout, name);
        printf(",\"index\":%ld,\"ok\":%s,\"us\":%.1f,\"nparams\":%ld,\"returns\":%s", m, ok ? "true" : "false",
               dt / 1000.0, nparams, has_ret ? "true" : "false");
        if (has_ret && !force_proc) { printf(",\"ret\":"); print_variant(stdout, &ret); }
        print_last_error();
    }
    end();
    release_variant(&ret);
    for (long i = 0; i < n; i++) release_variant(&args[i]);
}

/* callraw INDEX NARGS [nullparams|nullret] args...: exact index and count, for fault tests. */
static void cmd_callraw(const char* rest) {
    char a[64], b[64], opt[64], err[128] = "";
    const char* p = word(rest, a, sizeof a);
    p = word(p, b, sizeof b);
    const char* q = word(p, opt, sizeof opt);
    bool null_params = !strcmp(opt, "nullparams"), null_ret = !strcmp(opt, "nullret");
    if (null_params || null_ret) p = q;
    void* obj = cur();
    if (!obj) { fail_line("callraw", "no current object"); return; }
    tVariant args[MAX_ARGS];
    memset(args, 0, sizeof args);
    int given = parse_args(p, args, err);
    if (given < 0) { fail_line("callraw", err); return; }
    long m = atol(a), n = atol(b);
    if (n > MAX_ARGS) n = MAX_ARGS;
    reset_error();
    tVariant ret;
    memset(&ret, 0, sizeof ret);
    bool ok = LANG(obj)->CallAsFunc(IFACE(obj, 1), m, null_ret ? NULL : &ret, null_params ? NULL : args, n);
    begin("callraw");
    if (!quiet) {
        printf(",\"index\":%ld,\"ok\":%s,\"ret\":", m, ok ? "true" : "false");
        print_variant(stdout, &ret);
        print_last_error();
    }
    end();
    release_variant(&ret);
    for (int i = 0; i < MAX_ARGS; i++) release_variant(&args[i]);
}

static void print_name(const WCHAR_T* w) {
    json_wstr(stdout, w, wlen(w));
    if (w) { void* p = (void*)w; mem_free(&mem_manager, &p); }
}

static void cmd_members(void) {
    void* obj = cur();
    if (!obj) { fail_line("members", "no current object"); return; }
    const LangVtbl* l = LANG(obj);
    void* t = IFACE(obj, 1);
    begin("members");
    long nm = l->GetNMethods(t), np = l->GetNProps(t);
    printf(",\"methods\":[");
    for (long i = 0; i < nm; i++) {
        printf("%s{\"en\":", i ? "," : "");
        print_name(l->GetMethodName(t, i, 0));
        printf(",\"ru\":");
        print_name(l->GetMethodName(t, i, 1));
        long n = l->GetNParams(t, i);
        printf(",\"params\":%ld,\"returns\":%s,\"defaults\":[", n, l->HasRetVal(t, i) ? "true" : "false");
        for (long k = 0; k < n; k++) {
            tVariant v;
            memset(&v, 0, sizeof v);
            bool has = l->GetParamDefValue(t, i, k, &v);
            printf("%s", k ? "," : "");
            if (has) print_variant(stdout, &v); else printf("null");
            release_variant(&v);
        }
        printf("]}");
    }
    printf("],\"props\":[");
    for (long i = 0; i < np; i++) {
        printf("%s{\"en\":", i ? "," : "");
        print_name(l->GetPropName(t, i, 0));
        printf(",\"ru\":");
        print_name(l->GetPropName(t, i, 1));
        printf(",\"readable\":%s,\"writable\":%s}", l->IsPropReadable(t, i) ? "true" : "false",
               l->IsPropWritable(t, i) ? "true" : "false");
    }
    printf("]");
    end();
}

static void cmd_find(const char* rest, bool method) {
    char name[512];
    word(rest, name, sizeof name);
    void* obj = cur();
    if (!obj) { fail_line("find", "no current object"); return; }
    WCHAR_T* w = wdup_ascii_utf8(name);
    long idx = method ? LANG(obj)->FindMethod(IFACE(obj, 1), w) : LANG(obj)->FindProp(IFACE(obj, 1), w);
    free(w);
    begin(method ? "find-method" : "find-prop");
    if (!quiet) { printf(",\"name\":"); json_utf8(stdout, name); printf(",\"index\":%ld", idx); }
    end();
}

/* Hands the add-in NULL pointers and nonsense indices everywhere 1C could; each must be refused. */
static void cmd_null_checks(void) {
    void* obj = cur();
    if (!obj) { fail_line("null-checks", "no current object"); return; }
    const LangVtbl* l = LANG(obj);
    void* t = IFACE(obj, 1);
    tVariant v;
    memset(&v, 0, sizeof v);
    void* none = NULL;
    WCHAR_T bad[] = {'V', 0xD800, 'x', 0};
    begin("null-checks");
    printf(",\"FindMethod_null\":%ld", l->FindMethod(t, NULL));
    printf(",\"FindProp_null\":%ld", l->FindProp(t, NULL));
    printf(",\"FindMethod_bad_utf16\":%ld", l->FindMethod(t, bad));
    printf(",\"GetPropVal_null\":%s", l->GetPropVal(t, 0, NULL) ? "true" : "false");
    printf(",\"GetPropVal_bad_index\":%s", l->GetPropVal(t, 9999, &v) ? "true" : "false");
    release_variant(&v);
    printf(",\"GetPropVal_negative\":%s", l->GetPropVal(t, -1, &v) ? "true" : "false");
    release_variant(&v);
    printf(",\"SetPropVal_null\":%s", l->SetPropVal(t, 0, NULL) ? "true" : "false");
    printf(",\"GetPropName_bad\":%s", l->GetPropName(t, 9999, 0) ? "\"non-null\"" : "null");
    printf(",\"GetMethodName_bad\":%s", l->GetMethodName(t, -3, 1) ? "\"non-null\"" : "null");
    printf(",\"GetNParams_bad\":%ld", l->GetNParams(t, 9999));
    printf(",\"HasRetVal_bad\":%s", l->HasRetVal(t, -1) ? "true" : "false");
    printf(",\"GetParamDefValue_null\":%s", l->GetParamDefValue(t, 0, 0, NULL) ? "true" : "false");
    printf(",\"GetParamDefValue_bad\":%s", l->GetParamDefValue(t, 9999, 0, &v) ? "true" : "false");
    release_variant(&v);
    printf(",\"CallAsFunc_null_ret\":%s", l->CallAsFunc(t, 1, NULL, NULL, 0) ? "true" : "false");
    printf(",\"CallAsFunc_null_params\":%s", l->CallAsFunc(t, 1, &v, NULL, 5) ? "true" : "false");
    release_variant(&v);
    printf(",\"CallAsFunc_negative_count\":%s", l->CallAsFunc(t, 1, &v, &v, -2) ? "true" : "false");
    release_variant(&v);
    printf(",\"CallAsProc_bad_index\":%s", l->CallAsProc(t, 424242, NULL, 0) ? "true" : "false");
    printf(",\"RegisterExtensionAs_null\":%s", l->RegisterExtensionAs(t, NULL) ? "true" : "false");
    LOCALE(obj)->Set(IFACE(obj, 2), NULL);
    USERLANG(obj)->Set(IFACE(obj, 3), NULL);
    printf(",\"GetClassObject_null_name\":%ld", p_GetClassObject(NULL, &none));
    printf(",\"GetClassObject_null_out\":%ld", p_GetClassObject(class_name, NULL));
    WCHAR_T unknown[] = {'N', 'o', 'p', 'e', 0};
    printf(",\"GetClassObject_unknown\":%ld", p_GetClassObject(unknown, &none));
    printf(",\"DestroyObject_null\":%ld", p_DestroyObject(NULL));
    printf(",\"DestroyObject_null_object\":%ld", p_DestroyObject(&none));
    void* foreign = &v;
    printf(",\"DestroyObject_foreign\":%ld", p_DestroyObject(&foreign));
    printf(",\"Init_null\":%s", INITDONE(obj)->Init(IFACE(obj, 0), NULL) ? "true" : "false");
    /* Give the real host back so later errors are still reported. */
    INITDONE(obj)->Init(IFACE(obj, 0), &host_obj);
    print_last_error();
    end();
}

/* stress N: N live objects at once, each reads Version, then all are destroyed. */
static void cmd_stress(const char* rest) {
    int n = atoi(rest);
    int first = n_objects, made = 0, versions = 0, before = current;
    WCHAR_T* vname = wdup_ascii_utf8("Version");
    for (int i = 0; i < n; i++) {
        if (!create_object(i % 2 == 0, true)) break;
        made++;
        void* obj = cur();
        tVariant v;
        memset(&v, 0, sizeof v);
        long idx = LANG(obj)->FindProp(IFACE(obj, 1), vname);
        if (LANG(obj)->GetPropVal(IFACE(obj, 1), idx, &v) && v.vt == VTYPE_PWSTR) versions++;
        release_variant(&v);
    }
    free(vname);
    int destroyed = 0;
    for (int i = first; i < first + made; i++) {
        if (destroy_object(i, i % 3 == 0) == 0) destroyed++;
    }
    n_objects = first;
    current = before;
    begin("stress");
    if (!quiet) printf(",\"created\":%d,\"versions\":%d,\"destroyed\":%d", made, versions, destroyed);
    end();
}

static void cmd_bench_prop(const char* rest) {
    char name[256];
    const char* p = word(rest, name, sizeof name);
    long long n = atoll(skip_ws(p));
    void* obj = cur();
    if (!obj || n <= 0) { fail_line("bench-prop", "no current object or bad count"); return; }
    WCHAR_T* w = wdup_ascii_utf8(name);
    long idx = LANG(obj)->FindProp(IFACE(obj, 1), w);
    free(w);
    double t0 = now_ns();
    long long ok = 0;
    for (long long i = 0; i < n; i++) {
        tVariant v;
        memset(&v, 0, sizeof v);
        if (LANG(obj)->GetPropVal(IFACE(obj, 1), idx, &v)) ok++;
        release_variant(&v);
    }
    double dt = now_ns() - t0;
    begin("bench-prop");
    if (!quiet) printf(",\"prop\":\"%s\",\"calls\":%lld,\"ok\":%lld,\"ns_per_call\":%.1f", name, n, ok, dt / (double)n);
    end();
}

static long rss_kb(void) {
#ifdef _WIN32
    return -1;
#else
    FILE* f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) { kb = atol(line + 6); break; }
    fclose(f);
    return kb;
#endif
}

static void run_line(char* line);

static void cmd_repeat(const char* rest) {
    char count[64];
    const char* p = word(rest, count, sizeof count);
    long long n = atoll(count);
    char inner[8192];
    snprintf(inner, sizeof inner, "%s", skip_ws(p));
    unsigned long long errors_before = n_add_errors;
    double t0 = now_ns();
    quiet++;
    for (long long i = 0; i < n; i++) {
        char copy[8192];
        memcpy(copy, inner, sizeof copy);
        run_line(copy);
    }
    quiet--;
    double dt = now_ns() - t0;
    begin("repeat");
    printf(",\"count\":%lld,\"errors\":%llu,\"total_ms\":%.3f,\"us_per_call\":%.3f", n, n_add_errors - errors_before, dt / 1e6,
           n ? dt / 1000.0 / (double)n : 0.0);
    end();
}

/* ---- bench: timed loops that run inside the host, so the pipe is not measured --------------- */
/* bench N [stop-after K] [max-ms T] [wall-clock] [until-dry] [match "TEXT"] STEP [; STEP ...]
 * STEP: [then|until-hit] call M args | proc M args | get Prop | use I | any other command.
 * An iteration's tally comes from its last `call` step: Boolean true counts 1, a String holding
 * a JSON array counts its elements (PollBatch), anything else 0. `then` runs a step only when the
 * latest `call` of the iteration counted; `until-hit` repeats a step until its tally is > 0. */
#define MAX_STEPS 32
enum { STEP_CALL, STEP_PROC, STEP_GET, STEP_USE, STEP_OTHER };
enum { RUN_ALWAYS, RUN_THEN, RUN_UNTIL_HIT };

typedef struct {
    int kind, mode;
    char name[256];
    long index; /* method or property index; -2 until resolved on the first run */
    long n;     /* argument count after GetParamDefValue filled the omitted ones */
    int given;
    bool has_ret;
    int use;
    tVariant args[MAX_ARGS]; /* parsed once; each call gets a fresh copy, as the add-in may free them */
    char* line;              /* STEP_OTHER: run through run_line */
} Step;

typedef struct {
    WCHAR_T* needle;
    uint32_t needle_len;
    unsigned long long matches;
} BenchMatch;

/* Copies an argument into new host memory, as 1C builds fresh variants for every call. */
static void copy_variant(tVariant* dst, const tVariant* src) {
    *dst = *src;
    if (src->vt == VTYPE_PWSTR && src->u.w.pwstrVal) {
        void* mem;
        uint32_t n = src->u.w.wstrLen;
        mem_alloc(&mem_manager, &mem, (n + 1) * sizeof(WCHAR_T));
        memcpy(mem, src->u.w.pwstrVal, n * sizeof(WCHAR_T));
        ((WCHAR_T*)mem)[n] = 0;
        dst->u.w.pwstrVal = mem;
    } else if ((src->vt == VTYPE_PSTR || src->vt == VTYPE_BLOB) && src->u.s.pstrVal) {
        void* mem;
        uint32_t n = src->u.s.strLen;
        mem_alloc(&mem_manager, &mem, n + 1);
        memcpy(mem, src->u.s.pstrVal, n);
        ((char*)mem)[n] = 0;
        dst->u.s.pstrVal = mem;
    }
}

/* Top-level elements of a JSON array in UTF-16; -1 when the text is not an array. */
static bool wspace(WCHAR_T c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static long json_array_items(const WCHAR_T* w, uint32_t n) {
    uint32_t i = 0;
    while (i < n && wspace(w[i])) i++;
    if (i == n || w[i] != '[') return -1;
    for (i++; i < n && wspace(w[i]); i++) {}
    if (i == n || w[i] == ']') return 0;
    long items = 1, depth = 1;
    for (; i < n && depth > 0; i++) {
        WCHAR_T c = w[i];
        if (c == '"') {
            /* Strings are most of the text: skipped in a tight loop to the closing quote. */
            for (i++; i < n && w[i] != '"'; i++)
                if (w[i] == '\\') i++;
        } else if (c == '[' || c == '{') depth++;
        else if (c == ']' || c == '}') depth--;
        else if (c == ',' && depth == 1) items++;
    }
    return items;
}

static double bench_untimed_ns = 0; /* host work inside a bench loop that is not timed */
static bool bench_wall_clock = false; /* the running bench times its host work too */
static bool bench_nonempty_only = false; /* results are checked for being non-empty only */

static long tally_of(const tVariant* v, BenchMatch* m) {
    if (v->vt == VTYPE_BOOL) return v->u.bVal ? 1 : 0;
    if (v->vt != VTYPE_PWSTR || !v->u.w.pwstrVal) return 0;
    if (bench_nonempty_only) return v->u.w.wstrLen > 2; /* anything but "[]" or "" */
    if (m->needle_len) {
        const WCHAR_T* w = v->u.w.pwstrVal;
        uint32_t n = v->u.w.wstrLen;
        for (uint32_t i = 0; i + m->needle_len <= n; i++)
            if (w[i] == m->needle[0] && !memcmp(w + i, m->needle, m->needle_len * sizeof(WCHAR_T))) m->matches++;
    }
    long items = json_array_items(v->u.w.pwstrVal, v->u.w.wstrLen);
    return items > 0 ? items : 0;
}

/* Parses one step; `text` is NUL-terminated and owned by the caller for the bench's lifetime. */
static bool parse_step(char* text, Step* s, char* err) {
    char w[64];
    memset(s, 0, sizeof *s);
    s->index = -2;
    const char* p = word(text, w, sizeof w);
    if (!strcmp(w, "then") || !strcmp(w, "until-hit")) {
        s->mode = w[0] == 't' ? RUN_THEN : RUN_UNTIL_HIT;
        text = (char*)skip_ws(p);
        p = word(text, w, sizeof w);
    }
    if (!strcmp(w, "call") || !strcmp(w, "proc")) {
        s->kind = w[0] == 'c' ? STEP_CALL : STEP_PROC;
        p = word(p, s->name, sizeof s->name);
        s->given = parse_args(p, s->args, err);
        return s->given >= 0;
    }
    /* Only a `call` can hit: anything else under until-hit would never stop. */
    if (s->mode == RUN_UNTIL_HIT) { strcpy(err, "until-hit needs a call step"); return false; }
    if (!strcmp(w, "get")) { s->kind = STEP_GET; word(p, s->name, sizeof s->name); return true; }
    if (!strcmp(w, "use")) { s->kind = STEP_USE; s->use = atoi(p); return true; }
    if (!w[0]) { strcpy(err, "empty step"); return false; }
    s->kind = STEP_OTHER;
    s->line = (char*)skip_ws(text);
    return true;
}


/* Runs one step on the current object; false when it failed. Sets *tally for `call` steps. */
static bool run_step(Step* s, long* tally, BenchMatch* m) {
    if (s->kind == STEP_USE) {
        if (s->use < 0 || s->use >= n_objects || !objects[s->use]) return false;
        current = s->use;
        return true;
    }
    if (s->kind == STEP_OTHER) {
        quiet++;
        run_line(s->line);
        quiet--;
        return true;
    }
    void* obj = cur();
    if (!obj) return false;
    const LangVtbl* l = LANG(obj);
    void* t = IFACE(obj, 1);
    if (s->index == -2) {
        WCHAR_T* w = wdup_ascii_utf8(s->name);
        s->index = s->kind == STEP_GET ? l->FindProp(t, w) : l->FindMethod(t, w);
        free(w);
        if (s->index >= 0 && s->kind != STEP_GET) {
            long np = l->GetNParams(t, s->index);
            if (np > MAX_ARGS) np = MAX_ARGS;
            s->n = s->given > np ? s->given : np;
            for (long i = s->given; i < s->n; i++)
                if (!l->GetParamDefValue(t, s->index, i, &s->args[i])) memset(&s->args[i], 0, sizeof s->args[i]);
            s->has_ret = l->HasRetVal(t, s->index);
        }
    }
    if (s->index < 0) return false;
    tVariant ret;
    memset(&ret, 0, sizeof ret);
    bool ok;
    if (s->kind == STEP_GET) {
        ok = l->GetPropVal(t, s->index, &ret);
    } else {
        tVariant a[MAX_ARGS];
        for (long i = 0; i < s->n; i++) copy_variant(&a[i], &s->args[i]);
        ok = (s->has_ret && s->kind == STEP_CALL) ? l->CallAsFunc(t, s->index, &ret, s->n ? a : NULL, s->n)
                                                   : l->CallAsProc(t, s->index, s->n ? a : NULL, s->n);
        for (long i = 0; i < s->n; i++) release_variant(&a[i]);
        if (s->kind == STEP_CALL && ok && ret.vt == VTYPE_PWSTR && !bench_wall_clock) {
            /* Counting is host work: keep it out of the timings. */
            double t0 = now_ns();
            *tally = tally_of(&ret, m);
            bench_untimed_ns += now_ns() - t0;
        } else if (s->kind == STEP_CALL) {
            *tally = ok ? tally_of(&ret, m) : 0;
        }
    }
    release_variant(&ret);
    return ok;
}

static int cmp_ll(const void* a, const void* b) {
    long long x = *(const long long*)a, y = *(const long long*)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static long long percentile(const long long* v, long long n, int pct) {
    long long k = (n * pct + 99) / 100;
    return v[k > 0 ? k - 1 : 0];
}

static void cmd_bench(const char* rest) {
    char w[64], err[128] = "";
    const char* p = word(rest, w, sizeof w);
    long long n = atoll(w), stop_after = 0;
    /* wall-clock: counting results stays in the timings. Without it that host work is taken
       out, which flatters a consumer whose background fetching runs on meanwhile. */
    bool wall_clock = false;
    /* until-dry: after the first hit, the loop ends at the first iteration without one, and
       later results are only checked for being non-empty (1 each), not counted: a drained
       consumer needs no counting in the timed loop. */
    bool until_dry = false;
    double max_ms = 0;
    BenchMatch m = {NULL, 0, 0};
    for (;;) {
        const char* q = word(p, w, sizeof w);
        if (!strcmp(w, "stop-after")) { p = word(q, w, sizeof w); stop_after = atoll(w); }
        else if (!strcmp(w, "max-ms")) { p = word(q, w, sizeof w); max_ms = atof(w); }
        else if (!strcmp(w, "wall-clock")) { p = q; wall_clock = true; }
        else if (!strcmp(w, "until-dry")) { p = q; until_dry = true; }
        else if (!strcmp(w, "match")) {
            q = parse_wstring(skip_ws(q), &m.needle, &m.needle_len);
            if (!q) { fail_line("bench", "match needs a string literal"); return; }
            p = q;
        }
        else break;
    }
    /* Split on ';' outside string literals. */
    size_t len = strlen(p);
    char* text = malloc(len + 1);
    memcpy(text, p, len + 1);
    Step* steps = calloc(MAX_STEPS, sizeof(Step));
    int n_steps = 0;
    bool in_str = false, parsed = true;
    char* start = text;
    for (char* c = text;; c++) {
        if (in_str) {
            if (*c == '\\' && c[1]) c++;
            else if (*c == '"') in_str = false;
            else if (!*c) break;
            continue;
        }
        if (*c == '"') { in_str = true; continue; }
        if (*c == ';' || !*c) {
            bool last = !*c;
            *c = 0;
            if (n_steps == MAX_STEPS) { strcpy(err, "too many steps"); parsed = false; break; }
            if (!parse_step(start, &steps[n_steps], err)) { parsed = false; break; }
            n_steps++;
            if (last) break;
            start = c + 1;
        }
    }
    if (in_str && parsed) { strcpy(err, "unterminated string"); parsed = false; }
    if (!parsed || n <= 0) {
        fail_line("bench", parsed ? "bad count" : err);
    } else {
        /* Timings are preallocated and touched so the loop takes no page faults for them. */
        size_t cap = n < (1 << 20) ? (size_t)n : (size_t)1 << 20;
        long long* times = malloc(cap * sizeof(long long));
        memset(times, 0, cap * sizeof(long long));
        long long done = 0, hits = 0, items = 0, first_items = 0;
        double first_hit = -1, last_hit = -1;
        bool failed = false, timed_out = false;
        unsigned long long errors_before = n_add_errors;
        reset_error();
        quiet++;
        bool outer_wall_clock = bench_wall_clock;
        bench_wall_clock = wall_clock;
        bool outer_nonempty_only = bench_nonempty_only;
        bench_nonempty_only = false;
        double t_start = now_ns(), deadline = max_ms > 0 ? t_start + max_ms * 1e6 : 0;
        double t_prev = t_start, untimed_before = bench_untimed_ns; /* a bench may run inside another */
        while (done < n) {
            long tally = 0;
            for (int k = 0; k < n_steps && !failed && !timed_out; k++) {
                Step* s = &steps[k];
                if (s->mode == RUN_THEN && tally <= 0) continue;
                long step_tally = 0;
                for (;;) {
                    if (!run_step(s, &step_tally, &m)) { failed = true; break; }
                    if (s->kind == STEP_CALL) tally = step_tally;
                    if (s->mode != RUN_UNTIL_HIT || step_tally > 0) break;
                    if (deadline && now_ns() >= deadline) { timed_out = true; break; }
                }
            }
            double t_end = now_ns(), t = t_end - (bench_untimed_ns - untimed_before);
            if ((size_t)done == cap) { cap *= 2; times = realloc(times, cap * sizeof(long long)); }
            times[done++] = (long long)(t - t_prev);
            t_prev = t;
            if (tally > 0 && !failed && !timed_out) {
                hits++;
                items += tally;
                if (first_hit < 0) { first_hit = t - t_start; first_items = tally; }
                last_hit = t - t_start;
                if (until_dry) bench_nonempty_only = true;
            } else if (until_dry && hits > 0) {
                break;
            }
            if (failed || timed_out || (stop_after > 0 && items >= stop_after)) break;
            if (deadline && t_end >= deadline) { timed_out = true; break; }
        }
        double total = t_prev - t_start;
        bench_wall_clock = outer_wall_clock;
        bench_nonempty_only = outer_nonempty_only;
        quiet--;
        qsort(times, (size_t)done, sizeof(long long), cmp_ll);
        begin("bench");
        if (!quiet) {
            printf(",\"ok\":%s,\"count\":%lld,\"hits\":%lld,\"items\":%lld", failed ? "false" : "true", done, hits, items);
            if (m.needle_len) printf(",\"matches\":%llu", m.matches);
            printf(",\"timed_out\":%s,\"errors\":%llu,\"total_ns\":%.0f,\"p50_ns\":%lld,\"p99_ns\":%lld,\"max_ns\":%lld",
                   timed_out ? "true" : "false", n_add_errors - errors_before, total, percentile(times, done, 50),
                   percentile(times, done, 99), times[done - 1]);
            if (first_hit >= 0)
                printf(",\"first_hit_ns\":%.0f,\"last_hit_ns\":%.0f,\"first_hit_items\":%lld", first_hit,
                       last_hit, first_items);
            print_last_error();
        }
        end();
        free(times);
    }
    for (int k = 0; k < MAX_STEPS; k++)
        for (int i = 0; i < MAX_ARGS; i++) release_variant(&steps[k].args[i]);
    free(steps);
    free(text);
    free(m.needle);
}

static void run_line(char* line) {
    char cmd[64];
    char* nl = strpbrk(line, "\r\n");
    if (nl) *nl = 0;
    const char* rest = word(line, cmd, sizeof cmd);
    if (!cmd[0] || cmd[0] == '#') return;
    if (!strcmp(cmd, "new")) cmd_new(rest);
    else if (!strcmp(cmd, "use")) { int i = atoi(rest); current = (i >= 0 && i < n_objects && objects[i]) ? i : -1; begin("use"); if (!quiet) printf(",\"ok\":%s", current >= 0 ? "true" : "false"); end(); }
    else if (!strcmp(cmd, "destroy") || !strcmp(cmd, "destroy-virtual")) {
        long rc = current >= 0 ? destroy_object(current, cmd[7] == '-') : -1;
        begin(cmd); if (!quiet) printf(",\"ok\":%s", rc == 0 ? "true" : "false"); end();
    }
    else if (!strcmp(cmd, "locale") || !strcmp(cmd, "uilang")) {
        char v[64]; word(rest, v, sizeof v);
        void* obj = cur();
        if (!obj) { fail_line(cmd, "no current object"); return; }
        WCHAR_T* w = wdup_ascii_utf8(v);
        if (cmd[0] == 'l') LOCALE(obj)->Set(IFACE(obj, 2), w); else USERLANG(obj)->Set(IFACE(obj, 3), w);
        free(w);
        begin(cmd); if (!quiet) printf(",\"ok\":true"); end();
    }
    else if (!strcmp(cmd, "get")) cmd_get(rest);
    else if (!strcmp(cmd, "set")) cmd_set(rest);
    else if (!strcmp(cmd, "call")) cmd_call("call", rest, false);
    else if (!strcmp(cmd, "proc")) cmd_call("proc", rest, true);
    else if (!strcmp(cmd, "callraw")) cmd_callraw(rest);
    else if (!strcmp(cmd, "members")) cmd_members();
    else if (!strcmp(cmd, "find-method")) cmd_find(rest, true);
    else if (!strcmp(cmd, "find-prop")) cmd_find(rest, false);
    else if (!strcmp(cmd, "null-checks")) cmd_null_checks();
    else if (!strcmp(cmd, "stress")) cmd_stress(rest);
    else if (!strcmp(cmd, "bench-prop")) cmd_bench_prop(rest);
    else if (!strcmp(cmd, "bench")) cmd_bench(rest);
    else if (!strcmp(cmd, "repeat")) cmd_repeat(rest);
    else if (!strcmp(cmd, "rss")) { begin("rss"); if (!quiet) printf(",\"kb\":%ld", rss_kb()); end(); }
    else if (!strcmp(cmd, "mem")) {
        begin("mem");
        if (!quiet) printf(",\"allocs\":%llu,\"frees\":%llu,\"live\":%llu,\"bad_frees\":%llu", n_allocs, n_frees, (unsigned long long)live_count, n_bad_frees);
        end();
    }
    else if (!strcmp(cmd, "sleep")) {
        int ms = atoi(rest);
#ifdef _WIN32
        Sleep(ms);
#else
        usleep(ms * 1000);
#endif
        begin("sleep"); end();
    }
    else if (!strcmp(cmd, "echo")) { begin("echo"); if (!quiet) { printf(",\"text\":"); json_utf8(stdout, skip_ws(rest)); } end(); }
    else fail_line(cmd, "unknown command");
}

/* One whole line however long (a ProduceBatch body can be megabytes); NULL at end of input. */
static char* read_line(FILE* in, char** buf, size_t* cap) {
    size_t n = 0;
    for (;;) {
        if (*cap - n < 2) {
            *cap = *cap ? *cap * 2 : (size_t)1 << 16;
            *buf = realloc(*buf, *cap);
        }
        size_t room = *cap - n;
        if (!fgets(*buf + n, room > 0x40000000 ? 0x40000000 : (int)room, in)) return n ? *buf : NULL;
        n += strlen(*buf + n);
        if (n && (*buf)[n - 1] == '\n') return *buf;
    }
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: host1c LIBRARY [SCRIPT]\n");
        return 2;
    }
    LOCK_INIT(&print_lock);
    LOCK_INIT(&mem_lock);
#ifdef _WIN32
    /* Under Wine a Unix path becomes Z:\...; Windows wants backslashes. */
    char path[4096];
    snprintf(path, sizeof path, "%s%s", argv[1][0] == '/' ? "Z:" : "", argv[1]);
    for (char* c = path; *c; c++) if (*c == '/') *c = '\\';
    HMODULE lib = LoadLibraryA(path);
    if (!lib) { fprintf(stderr, "LoadLibrary(%s) failed: %lu\n", path, GetLastError()); return 2; }
#define SYM(name) (void*)GetProcAddress(lib, name)
#else
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen failed: %s\n", dlerror()); return 2; }
#define SYM(name) dlsym(lib, name)
#endif
    p_GetClassNames = (GetClassNamesFn)SYM("GetClassNames");
    p_GetClassObject = (GetClassObjectFn)SYM("GetClassObject");
    p_DestroyObject = (DestroyObjectFn)SYM("DestroyObject");
    p_SetPlatformCapabilities = (SetPlatformCapabilitiesFn)SYM("SetPlatformCapabilities");
    p_GetAttachType = (GetAttachTypeFn)SYM("GetAttachType");
    if (!p_GetClassNames || !p_GetClassObject || !p_DestroyObject || !p_SetPlatformCapabilities || !p_GetAttachType) {
        fprintf(stderr, "a Native API export is missing\n");
        return 2;
    }
    int caps = p_SetPlatformCapabilities(3);
    const WCHAR_T* names = p_GetClassNames();
    /* The first class name (up to '|') is the one we create. */
    size_t k = 0;
    while (names && names[k] && names[k] != '|' && k + 1 < sizeof class_name / sizeof class_name[0]) { class_name[k] = names[k]; k++; }
    class_name[k] = 0;
    printf("{\"cmd\":\"load\",\"ok\":true,\"class_names\":");
    json_wstr(stdout, names, wlen(names));
    printf(",\"capabilities\":%d,\"attach_type\":%d,\"pointer_bits\":%d,\"variant_size\":%d}\n", caps, p_GetAttachType(),
           (int)(sizeof(void*) * 8), (int)sizeof(tVariant));
    fflush(stdout);

    FILE* in = stdin;
    if (argc > 2) {
        in = fopen(argv[2], "r");
        if (!in) { fprintf(stderr, "cannot open script %s\n", argv[2]); return 2; }
    }
    char* line = NULL;
    size_t line_cap = 0;
    while (read_line(in, &line, &line_cap)) run_line(line);
    free(line);

    /* Like 1C at shutdown: every remaining object is finished and destroyed. */
    for (int i = 0; i < n_objects; i++) if (objects[i]) destroy_object(i, false);
    int status = (live_count || n_bad_frees) ? 3 : 0;
    printf("{\"cmd\":\"exit\",\"allocs\":%llu,\"frees\":%llu,\"leaked\":%llu,\"bad_frees\":%llu,\"add_errors\":%llu,\"events\":%llu,\"status\":%d}\n",
           n_allocs, n_frees, (unsigned long long)live_count, n_bad_frees, n_add_errors, n_events, status);
    fflush(stdout);
    return status;
}
