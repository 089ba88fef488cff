package abi

// SelectNoneReady is the index fastly_async_io.select writes to its
// ready_idx out-pointer when no item became ready within the timeout
// (u32::MAX in the compute-at-edge witx definitions).
const SelectNoneReady uint32 = 0xFFFFFFFF
