package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/edgehost/edgehost/abi"
)

// hostField is one field of a host argument struct.
type hostField struct {
	name, typ, comment string
}

// hostFields are the fields of h's argument struct, one per Param.
func hostFields(h abi.Hostcall) []hostField {
	var fs []hostField
	for _, p := range h.Params {
		f := hostField{name: camel(p.Name, false), comment: notation(p)}
		switch p.Kind {
		case abi.KindHandle, abi.KindInStruct, abi.KindOut:
			f.typ = "uint32"
		case abi.KindScalar:
			f.typ = "uint32"
			if p.Size == 8 {
				f.typ = "uint64"
			}
		case abi.KindHandleList:
			f.typ = "handleList"
		case abi.KindIn:
			f.typ = "[]byte"
		case abi.KindOutBuf:
			f.typ = "outBuf"
		case abi.KindCursorBuf:
			f.typ = "cursorBuf"
		}
		switch p.Kind {
		case abi.KindIn:
			f.comment += fmt.Sprintf(", a view of guest memory (at most %s bytes)", inMax(p))
		case abi.KindInStruct:
			f.comment += ", the pointer: read by the implementation"
		case abi.KindOut:
			f.comment += fmt.Sprintf(", the pointer: %d bytes, checked", p.Size)
		}
		fs = append(fs, f)
	}
	return fs
}

// inMax is the most bytes the host reads for a KindIn parameter.
func inMax(p abi.Param) string {
	if p.Max == 0 {
		return "maxStringLen"
	}
	return fmt.Sprint(p.Max)
}

func argsType(h abi.Hostcall) string { return funcName(h) + "Args" }

func hostArgs(hs []abi.Hostcall) string {
	var b bytes.Buffer
	b.WriteString(header + "package hostcall\n\nimport \"github.com/edgehost/edgehost/abi\"\n\n")
	b.WriteString("// One argument struct per hostcall edgehost implements, and its binding:\n" +
		"// bindX(fn) returns the table entry of hostcall X, which decodes the\n" +
		"// Wasm parameters into the struct, checks them (input ranges inside\n" +
		"// linear memory and within their limit, every out-pointer aligned and\n" +
		"// writable, unless the hostcall is described as never answering inval\n" +
		"// or badalign) and only then calls fn. A hostcall whose parameters have\n" +
		"// the same names and kinds as an earlier one shares its struct (a type\n" +
		"// alias), so one implementation can serve both.\n")
	seen := map[string]string{} // field list -> type
	for _, h := range hs {
		if !h.Implemented {
			continue
		}
		fs := hostFields(h)
		var key strings.Builder
		for i, f := range fs {
			p := h.Params[i]
			fmt.Fprintf(&key, "%s %s %d %d %d %d;", f.name, f.typ, p.Kind, p.Size, p.Align, p.Max)
		}
		fmt.Fprintf(&key, "checks %v", checksPointers(h))
		typ := argsType(h)
		if base, ok := seen[key.String()]; ok {
			fmt.Fprintf(&b, "\n// %s are the arguments of %s.%s, as %s's.\ntype %s = %s\n", typ, h.Module, h.Name, base, typ, base)
		} else {
			seen[key.String()] = typ
			fmt.Fprintf(&b, "\n// %s are the arguments of %s.%s.\ntype %s struct {\n", typ, h.Module, h.Name, typ)
			for _, f := range fs {
				fmt.Fprintf(&b, "\t%s %s // %s\n", f.name, f.typ, f.comment)
			}
			b.WriteString("}\n")
			if len(h.Params) > 0 && h.Params[0].Kind == abi.KindHandle {
				p := h.Params[0]
				fmt.Fprintf(&b, "\n// handle is the %s handle the call is about: %s.\nfunc (a %s) handle() uint32 { return a.%s }\n",
					p.Handle, camel(p.Name, false), typ, camel(p.Name, false))
			}
			hostDecode(&b, h, typ)
		}
		fmt.Fprintf(&b, "\n// %s binds fn as %s.%s: %s\nfunc %s(fn func(c *call, a %s) error) impl {\n"+
			"\treturn impl{%s, %q, func(c *call) error {\n\t\tvar a %s\n\t\tif err := a.decode(c); err != nil {\n\t\t\treturn err\n\t\t}\n\t\treturn fn(c, a)\n\t}}\n}\n",
			bindName(h), h.Module, h.Name, h.Doc, bindName(h), typ, moduleConst(h.Module), h.Name, typ)
	}
	return b.String()
}

// bindName is the name of h's binding, e.g. bindReqSendV2, bindABIInit.
func bindName(h abi.Hostcall) string {
	return "bind" + camel(moduleWord(h.Module), false) + camel(h.Name, false)
}

// checksPointers reports whether h's binding checks its out-pointers: when
// h is described as answering inval or badalign (abi.Hostcall.Statuses is
// every status it answers). One that answers neither writes nothing (a
// fact that never applies answers none), and so checks nothing.
func checksPointers(h abi.Hostcall) bool {
	return h.Statuses.Has(abi.Inval) || h.Statuses.Has(abi.Badalign)
}

// hostDecode writes the decode method of typ, h's argument struct.
func hostDecode(b *bytes.Buffer, h abi.Hostcall, typ string) {
	fmt.Fprintf(b, "\nfunc (a *%s) decode(c *call) error {\n", typ)
	var checks []string
	check := func(expr string, size, align uint32) {
		if !checksPointers(h) {
			return
		}
		checks = append(checks, fmt.Sprintf("if err := c.checkOut(%s, %d, %d); err != nil {\n\t\treturn err\n\t}\n", expr, size, align))
	}
	i := 0
	needErr := false
	for _, p := range h.Params {
		n := "a." + camel(p.Name, false)
		switch p.Kind {
		case abi.KindHandle, abi.KindInStruct:
			fmt.Fprintf(b, "\t%s = uint32(c.args[%d])\n", n, i)
		case abi.KindScalar:
			if p.Size == 8 {
				fmt.Fprintf(b, "\t%s = c.args[%d]\n", n, i)
			} else {
				fmt.Fprintf(b, "\t%s = uint32(c.args[%d])\n", n, i)
			}
		case abi.KindOut:
			fmt.Fprintf(b, "\t%s = uint32(c.args[%d])\n", n, i)
			check(n, p.Size, p.Align)
		case abi.KindHandleList:
			fmt.Fprintf(b, "\t%s = handleList{Ptr: uint32(c.args[%d]), Len: uint32(c.args[%d])}\n", n, i, i+1)
		case abi.KindIn:
			needErr = true
			fmt.Fprintf(b, "\tif %s, err = c.in(uint32(c.args[%d]), uint32(c.args[%d]), %s); err != nil {\n\t\treturn err\n\t}\n", n, i, i+1, inMax(p))
		case abi.KindOutBuf:
			fmt.Fprintf(b, "\t%s = outBuf{Ptr: uint32(c.args[%d]), Cap: uint32(c.args[%d]), NWritten: uint32(c.args[%d])}\n", n, i, i+1, i+2)
			check(n+".NWritten", 4, 4)
		case abi.KindCursorBuf:
			fmt.Fprintf(b, "\t%s = cursorBuf{Ptr: uint32(c.args[%d]), Cap: uint32(c.args[%d]), Cursor: uint32(c.args[%d]), EndingCursor: uint32(c.args[%d]), NWritten: uint32(c.args[%d])}\n", n, i, i+1, i+2, i+3, i+4)
			check(n+".EndingCursor", 8, 8)
			check(n+".NWritten", 4, 4)
		}
		i += len(p.Wasm())
	}
	for _, c := range checks {
		b.WriteString("\t" + c)
	}
	b.WriteString("\treturn nil\n}\n")
	if needErr {
		// declare err at the top: rewrite the header line.
		s := b.String()
		hdr := fmt.Sprintf("\nfunc (a *%s) decode(c *call) error {\n", typ)
		k := strings.LastIndex(s, hdr)
		s = s[:k+len(hdr)] + "\tvar err error\n" + s[k+len(hdr):]
		b.Reset()
		b.WriteString(s)
	}
}
