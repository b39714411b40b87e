/* Error context: the first error wins, later ones are dropped. */
#include <stdarg.h>
#include <stdio.h>

#include "heartbeat/heartbeat.h"

int hb_fail(hb_error *err, int code, const char *fmt, ...) {
    if (err && err->code == HB_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return err && err->code != HB_OK ? err->code : code;
}

void hb_error_clear(hb_error *err) {
    err->code = HB_OK;
    err->msg[0] = '\0';
}

const char *hb_version(void) {
    return HB_VERSION_STRING;
}
