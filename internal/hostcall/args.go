package hostcall

// The parameter shapes of the typed arguments (args_gen.go, generated
// from abi.Hostcalls): each names the Wasm values of one abi.Param.

// outBuf is a KindOutBuf parameter: a guest buffer (Ptr, Cap bytes) and
// the out-pointer the host writes the bytes written (or needed) to.
// NWritten is checked (4 bytes, aligned) before the implementation runs.
type outBuf struct{ Ptr, Cap, NWritten uint32 }

// cursorBuf is a KindCursorBuf parameter: one page of a multi-value
// listing (abi/README.md, "Multi-value getters"). EndingCursor (8 bytes)
// and NWritten (4) are checked before the implementation runs.
type cursorBuf struct{ Ptr, Cap, Cursor, EndingCursor, NWritten uint32 }

// handleList is a KindHandleList parameter: Len i32 handles at Ptr, read
// (and checked) by the implementation.
type handleList struct{ Ptr, Len uint32 }

// writeBuf writes value into b as putBuf does.
func (c *call) writeBuf(b outBuf, value []byte) error {
	return c.putBuf(b.Ptr, b.Cap, b.NWritten, value)
}

// writeMulti writes a page of values into b as putMulti does.
func (c *call) writeMulti(b cursorBuf, values []string) error {
	return c.putMulti(values, b.Ptr, b.Cap, b.Cursor, b.EndingCursor, b.NWritten)
}
