#include "core/err.h"

const char *err_str(int code)
{
    switch (code) {
    case BH_OK: return "success";
    case BH_ENOMEM: return "out of memory";
    case BH_EINVAL: return "invalid argument";
    case BH_ETOOBIG: return "too large";
    case BH_ENOTFOUND: return "not found";
    case BH_EEXIST: return "already exists";
    case BH_ECONFLICT: return "conflict";
    case BH_EIO: return "I/O or store failure";
    case BH_ERANGE: return "out of range";
    case BH_EAGAIN: return "try again";
    case BH_ESHUTDOWN: return "shutting down";
    case BH_EAUTH: return "authentication failed";
    case BH_EINTERNAL: return "internal error";
    case BH_ENOSPC: return "the disk is full";
    case BH_EDISKIO: return "disk I/O error";
    case BH_EGONE: return "gone";
    }
    return "unknown error";
}
