/*
 * err.h: the project's error codes.
 *
 * Functions return 0 on success or a negative BH_E* code, the libuv way. err_str()
 * turns a code into a short English message for logs and one-line CLI errors.
 */
#ifndef BREAKHOOK_CORE_ERR_H
#define BREAKHOOK_CORE_ERR_H

enum {
    BH_OK = 0,
    BH_ENOMEM = -1,     /* allocation failed */
    BH_EINVAL = -2,     /* argument or input is malformed */
    BH_ETOOBIG = -3,    /* a bounded buffer would exceed its maximum */
    BH_ENOTFOUND = -4,  /* no such object (in this tenant) */
    BH_EEXIST = -5,     /* object already exists */
    BH_ECONFLICT = -6,  /* conflicts with the current state */
    BH_EIO = -7,        /* I/O or store failure */
    BH_ERANGE = -8,     /* value out of range */
    BH_EAGAIN = -9,     /* try again later */
    BH_ESHUTDOWN = -10, /* the component is shutting down */
    BH_EAUTH = -11,     /* authentication failed */
    BH_EINTERNAL = -12, /* a bug: an invariant did not hold */
    BH_ENOSPC = -13,    /* the store's disk is full (SQLITE_FULL) */
    BH_EDISKIO = -14,   /* the store's disk failed a read or write (SQLITE_IOERR) */
    BH_EGONE = -15,     /* existed once, no longer: expired, replaced or pruned */
};

/* A static, never-NULL message for a BH_E* code (or "unknown error"). */
const char *err_str(int code);

#define BH_MUST_USE __attribute__((warn_unused_result))

#endif
