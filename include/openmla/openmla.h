#pragma once
// openmla: Multi-head Latent Attention decoding over a paged latent KV cache.

#include "openmla/cache.h"
#include "openmla/decode.h"
#include "openmla/error.h"
#include "openmla/info.h"
#include "openmla/kernel.h"
#include "openmla/merge.h"
#include "openmla/plan.h"
#include "openmla/tensor.h"
#include "openmla/version.h"
