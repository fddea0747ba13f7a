#include "gguf/value.h"
