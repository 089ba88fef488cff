//go:build wasip1

package guestsdk

import "testing"

// allBindings references every raw binding, so that a wasip1 test binary
// imports all of them; TestWasmBuilds (run natively) checks those
// imports against abi.Funcs.
var allBindings = []any{
	abiInit, bodyNew, bodyAppend, bodyRead, bodyWrite, bodyClose, bodyAbandon, logEndpointGet, logWrite,
	reqBodyDownstreamGet, reqNew, reqClose, reqMethodGet, reqMethodSet, reqURIGet, reqURISet,
	reqHeaderNamesGet, reqHeaderValuesGet, reqHeaderAppend, reqSendV2, reqSendAsync,
	reqPendingReqWaitV2, reqRegisterDynamicBackend, respNew, respClose, respStatusGet,
	respStatusSet, respHeaderNamesGet, respHeaderValuesGet, respHeaderAppend, respSendDownstream,
	dictionaryOpen, dictionaryGet, configStoreOpen, configStoreGet, backendExists,
	backendIsHealthy, backendIsDynamic, backendIsSSL, backendGetHost, backendGetOverrideHost,
	backendGetPort, backendGetConnectTimeoutMs, backendGetFirstByteTimeoutMs,
	backendGetBetweenBytesTimeoutMs, backendGetSSLMinVersion, backendGetSSLMaxVersion,
	backendGetHTTPKeepaliveTime, backendGetTCPKeepaliveEnable, backendGetTCPKeepaliveInterval,
	backendGetTCPKeepaliveProbes, backendGetTCPKeepaliveTime, downstreamNextRequest, downstreamNextRequestWait,
}

func TestAllBindingsReferenced(t *testing.T) {
	for i, b := range allBindings {
		if b == nil {
			t.Errorf("binding %d is nil", i)
		}
	}
}
