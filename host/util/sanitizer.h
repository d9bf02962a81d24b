/* Whether this build runs under AddressSanitizer (gcc's and clang's spellings), for the few places where the
 * host must behave differently to stay checkable: defines SH_UNDER_ASAN. */
#ifndef SH_SANITIZER_H
#define SH_SANITIZER_H

#if defined(__SANITIZE_ADDRESS__)
#define SH_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SH_UNDER_ASAN 1
#endif
#endif

#endif
