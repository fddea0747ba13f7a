#include "tensor/quant.h"
