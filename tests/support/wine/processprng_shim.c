/*
 * Test-only stand-in for bcryptprimitives.dll under Wine 8, which lacks ProcessPrng (the
 * random source Rust's std uses on Windows 10+). Real Windows has it; this file never ships.
 */
#include <windows.h>

typedef BOOLEAN(WINAPI* RtlGenRandomFn)(PVOID, ULONG);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    static RtlGenRandomFn gen;
    if (!gen) gen = (RtlGenRandomFn)(void*)GetProcAddress(LoadLibraryA("advapi32.dll"), "SystemFunction036");
    if (!gen) return FALSE;
    while (len) {
        ULONG n = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!gen(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
