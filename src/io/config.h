/* Strict INI configuration: parsed with inih, every key looked up with a type and range,
 * unknown keys rejected with file:line, and the effective config (defaults filled in) kept
 * for the output file. Not collective: every rank parses the same file itself. */
#ifndef HB_IO_CONFIG_H
#define HB_IO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "heartbeat/heartbeat.h"

typedef struct hb_config hb_config;

/* Parse an INI file. A duplicate key, a line inih cannot parse, or an unreadable file is
   an error (HB_ERR_USAGE). */
int hb_config_load(hb_config **out, const char *path, hb_error *err);
/* Build from INI text held in memory (name is used in messages). */
int hb_config_load_string(hb_config **out, const char *name, const char *text, hb_error *err);
/* Apply "section.key=value" (from --set); replaces or adds. */
int hb_config_override(hb_config *c, const char *assignment, hb_error *err);
void hb_config_free(hb_config *c);
const char *hb_config_path(const hb_config *c);

/* Typed look-ups. Each marks the key as used and records its effective value.
   def == NULL makes the key required. A value of the wrong type or outside [lo, hi] is
   an error citing file:line and the key. */
int hb_cfg_int(hb_config *c, const char *sec, const char *key, const int64_t *def, int64_t lo,
               int64_t hi, int64_t *out, hb_error *err);
int hb_cfg_double(hb_config *c, const char *sec, const char *key, const double *def, double lo,
                  double hi, double *out, hb_error *err);
/* A number or the word "auto" (then *is_auto = 1 and *out is left alone). def_auto makes
   the default "auto"; otherwise def as for hb_cfg_double. */
int hb_cfg_double_or_auto(hb_config *c, const char *sec, const char *key, int def_auto,
                          const double *def, double lo, double hi, double *out, int *is_auto,
                          hb_error *err);
int hb_cfg_string(hb_config *c, const char *sec, const char *key, const char *def, const char **out,
                  hb_error *err);
/* One of choices (NULL-terminated); *out = its index. */
int hb_cfg_choice(hb_config *c, const char *sec, const char *key, const char *def,
                  const char *const *choices, int *out, hb_error *err);
/* Comma-separated numbers in [lo, hi]; *out malloc'd (caller frees). */
int hb_cfg_double_list(hb_config *c, const char *sec, const char *key, const char *def, double lo,
                       double hi, double **out, size_t *n, hb_error *err);
/* Is the key's value the word `word` (e.g. "auto" where a number is also allowed)? If so,
   marks the key used, records the word and writes "file:line" (or "--set") to where_buf;
   otherwise changes nothing, so the key can then be read with a typed look-up. */
int hb_cfg_is_word(hb_config *c, const char *sec, const char *key, const char *word,
                   char *where_buf, size_t len);
/* "file:line" (or "--set") of the key into buf, the file's path when it is absent; returns
   whether it is present. Does not mark it used. */
int hb_cfg_where(const hb_config *c, const char *sec, const char *key, char *buf, size_t len);
/* Is the key present (in the file or via --set)? Does not mark it used. */
int hb_cfg_has(const hb_config *c, const char *sec, const char *key);
/* Record a value in the effective config without reading one (e.g. a generated seed). */
void hb_cfg_record(hb_config *c, const char *sec, const char *key, const char *value);

/* After all look-ups: any key never looked up is an error ("unknown key"), any section
   with no known key is an error ("unknown section"). */
int hb_cfg_finish(hb_config *c, hb_error *err);
/* The effective configuration as INI text (malloc'd): every key that was looked up, with
   the value used, grouped by section in first-use order. */
char *hb_cfg_effective(const hb_config *c);

#endif
