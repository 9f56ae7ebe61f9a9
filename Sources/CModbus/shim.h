// libmodbus 3.1 (Debian's libmodbus-dev); its .pc file adds -I/usr/include/modbus.
#include <modbus.h>
