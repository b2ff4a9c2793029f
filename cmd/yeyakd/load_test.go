package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadSubcommands: a production database is filled from files — the
// campaign (docs/campaign-2021.json), its clinics, their supply — by
// subcommands that need no Kafka, issuer or registry; bad files apply
// nothing and name their lines; a supply file applies once.
func TestLoadSubcommands(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "y.db")
	ctx := context.Background()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub := func(args ...string) (string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(ctx, append(args, "--db", db), env(nil), &out, &errb)
		return out.String(), err
	}
	if _, err := sub("migrate"); err != nil {
		t.Fatalf("migrate without kafka or issuer: %v", err)
	}
	out, err := sub("campaign", "load", "../../docs/campaign-2021.json")
	if err != nil || !strings.Contains(out, "campaign covid19-2021-18-49 loaded") {
		t.Fatalf("campaign load: %v\n%s", err, out)
	}
	if _, err := sub("campaign", "load", write("bad.json", `{"id":"x"}`)); err == nil {
		t.Fatal("an invalid campaign file loaded")
	}
	if _, err := sub("clinic", "load", write("bad.csv", "id,name,region,lat,lon,products\nC1,X,seoul,1,2,pfizer\n")); err == nil || !strings.Contains(err.Error(), "2: region") {
		t.Fatalf("bad clinic file: %v", err)
	}
	out, err = sub("clinic", "load", write("clinics.csv", "id,name,region,lat,lon,products\nC1,Jongno Clinic,11-110,37.57,126.98,pfizer;moderna\nC2,Gangnam Clinic,11-680,37.50,127.04,pfizer\n"))
	if err != nil || !strings.Contains(out, "2 clinics loaded") {
		t.Fatalf("clinic load: %v\n%s", err, out)
	}
	supply := write("supply.csv", "clinic_id,date,product,dose,doses\nC1,2021-08-26,pfizer,1,110\nC2,2021-08-26,pfizer,1,55\nC1,2021-10-07,pfizer,2,110\n")
	if _, err := sub("supply", "load", supply); err == nil || !strings.Contains(err.Error(), "--campaign") {
		t.Fatalf("supply load without --campaign: %v", err)
	}
	out, err = sub("supply", "load", supply, "--campaign", "covid19-2021-18-49")
	if err != nil || !strings.Contains(out, "3 rows") || !strings.Contains(out, "275 doses") {
		t.Fatalf("supply load: %v\n%s", err, out)
	}
	out, err = sub("supply", "load", supply, "--campaign", "covid19-2021-18-49")
	if err != nil || !strings.Contains(out, "already applied") {
		t.Fatalf("supply replay: %v\n%s", err, out)
	}
	if _, err := sub("supply", "load", write("bad-supply.csv", "clinic_id,date,product,dose,doses\nC1,2021-08-27,pfizer,1,-5\n"), "--campaign", "covid19-2021-18-49"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad supply: %v", err)
	}
	if _, err := sub("supply", "load"); err == nil {
		t.Fatal("supply load without a file ran")
	}
}
