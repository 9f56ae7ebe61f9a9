// libgpiod 1.6 (Debian's libgpiod-dev, v1 API). libgpiod 2.x changed the API: keep it behind GPIOD/.
#include <gpiod.h>
