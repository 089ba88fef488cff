//go:build wasip1

package main

import "testing"

func TestPass(t *testing.T) {
	if 1+1 != 2 {
		t.Fatal("arithmetic")
	}
}

func TestFail(t *testing.T) {
	t.Fatal("this test fails on purpose")
}

func TestConfigStore(t *testing.T) {
	v, ok := lookup("settings", "greeting")
	if !ok || v != "hello from the manifest" {
		t.Fatalf("config store settings.greeting = %q, %v", v, ok)
	}
}
