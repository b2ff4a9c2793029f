package harness

import "testing"

func TestSplice(t *testing.T) {
	doc := Splice("# title\n", ChaosBegin, ChaosEnd, "PASS a\n")
	want := "# title\n\n" + ChaosBegin + "\nPASS a\n" + ChaosEnd + "\n"
	if doc != want {
		t.Fatalf("append:\n%q\nwant\n%q", doc, want)
	}
	doc2 := Splice(doc+"after\n", ChaosBegin, ChaosEnd, "FAIL b")
	if want := "# title\n\n" + ChaosBegin + "\nFAIL b\n" + ChaosEnd + "\nafter\n"; doc2 != want {
		t.Fatalf("replace:\n%q\nwant\n%q", doc2, want)
	}
	if s := Section(doc2, ChaosBegin, ChaosEnd); s != ChaosBegin+"\nFAIL b\n"+ChaosEnd {
		t.Errorf("section %q", s)
	}
	if Section("no markers", ChaosBegin, ChaosEnd) != "" {
		t.Error("section found in a document without one")
	}
}
