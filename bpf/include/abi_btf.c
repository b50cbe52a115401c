// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Not loaded anywhere: compiled with -g so its BTF describes every ward_abi.h struct, which
 * test/datapath/abi.test.ts compares with the TypeScript layouts (offsets and sizes). */
#include <linux/types.h>
#include "ward_abi.h"

struct ward_policy_key abi_policy_key;
struct ward_policy_value abi_policy_value;
struct ward_ipcache_key abi_ipcache_key;
struct ward_ipcache_value abi_ipcache_value;
struct ward_endpoint_value abi_endpoint_value;
struct ward_ct_key abi_ct_key;
struct ward_ct_value abi_ct_value;
struct ward_metrics_key abi_metrics_key;
struct ward_metrics_value abi_metrics_value;
struct ward_event abi_event;
