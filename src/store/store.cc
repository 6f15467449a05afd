#include "rhip/store/store.h"
