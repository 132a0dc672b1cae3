// OpenBLAS's CBLAS interface. pkg-config `openblas` gives the include path of the
// variant Debian installs (openblas-pthread); we pin its threads to 1 and thread ourselves.
#include <cblas.h>
