/* Helpers shared by the built-in model files (not part of any public interface). */
#ifndef HB_MODELS_BUILTIN_H
#define HB_MODELS_BUILTIN_H

#include <stddef.h>

/* log(2 pi); M_PI is not in ISO C. */
#define HB_LOG_2PI 1.83787706640934548356065947281123527

/* Coordinate names prefix[first] .. prefix[first+n-1], e.g. "x[1]".."x[n]": one
   allocation holding the pointer table and the strings, released with a single free(). */
char **hb_coord_names(const char *prefix, size_t first, size_t n);

#endif
