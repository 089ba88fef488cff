package abi

// ModuleComputeRuntime is the import module of the sandbox's own resource
// counters (get_vcpu_ms, get_heap_mib); see README.md beside this file.
const ModuleComputeRuntime = "fastly_compute_runtime"

// ComplianceRegionNone is what downstream_compliance_region writes when
// the request carries no compliance region (edgehost never assigns one).
const ComplianceRegionNone = "none"

// EarlyHints is the one informational status send_downstream accepts
// (103): it sends an interim response and leaves the response and body
// handles usable for the final one. Any other 1xx status is inval.
const EarlyHints = 103
