package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
)

// maxLoadFile bounds the files the load subcommands read.
const maxLoadFile = 64 << 20

func readLoadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLoadFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLoadFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxLoadFile)
	}
	return b, nil
}

// loadCampaigns is `yeyakd campaign load FILE`: every campaign of the file
// is validated, then added or replaced. Running yeyakd instances see new
// campaigns on their next snapshot reload (about 30 s); the waiting room
// takes the openings of new campaigns at its next start.
func loadCampaigns(ctx context.Context, cfg *config, path string, stdout io.Writer) error {
	b, err := readLoadFile(path)
	if err != nil {
		return fmt.Errorf("campaign load: %w", err)
	}
	cs, err := booking.ParseCampaigns(b)
	if err != nil {
		return fmt.Errorf("campaign load %s: %s", path, booking.ErrorMessage(err))
	}
	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{})
	if err != nil {
		return fmt.Errorf("campaign load: %w", err)
	}
	defer db.Close()
	for _, c := range cs {
		if err := db.PutCampaign(ctx, c); err != nil {
			return fmt.Errorf("campaign load %s: %w", c.ID, err)
		}
		fmt.Fprintf(stdout, "campaign %s loaded: %d phases, vaccination %s..%s, open until %s\n",
			c.ID, len(c.Phases), c.VaccinationFrom, c.VaccinationTo, c.OpenUntil.Format("2006-01-02 15:04 MST"))
	}
	return nil
}

// loadClinics is `yeyakd clinic load FILE`: every clinic of the file (CSV,
// or JSON when it ends in .json) is validated, then all are added or
// replaced in one transaction.
func loadClinics(ctx context.Context, cfg *config, path string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("clinic load: %w", err)
	}
	defer f.Close()
	cs, err := booking.ParseClinics(f, formatOf(path))
	if err != nil {
		return fmt.Errorf("clinic load %s: nothing applied: %s", path, booking.ErrorMessage(err))
	}
	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{})
	if err != nil {
		return fmt.Errorf("clinic load: %w", err)
	}
	defer db.Close()
	if err := db.PutClinics(ctx, cs); err != nil {
		return fmt.Errorf("clinic load: %w", err)
	}
	fmt.Fprintf(stdout, "%d clinics loaded\n", len(cs))
	return nil
}

// formatOf is JSON for a .json file, else CSV.
func formatOf(path string) booking.SupplyFormat {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return booking.SupplyJSON
	}
	return booking.SupplyCSV
}

// loadSupply is `yeyakd supply load FILE --campaign ID`: the file (CSV, or
// JSON when it ends in .json) is validated row by row and applied in one
// transaction, once per file digest; a reduction below what is booked is
// refused with the affected bookings counted.
func loadSupply(ctx context.Context, cfg *config, path string, stdout io.Writer, log *slog.Logger) error {
	if cfg.Campaign == "" {
		return errors.New("supply load: give --campaign ID")
	}
	b, err := readLoadFile(path)
	if err != nil {
		return fmt.Errorf("supply load: %w", err)
	}
	format := formatOf(path)
	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{})
	if err != nil {
		return fmt.Errorf("supply load: %w", err)
	}
	defer db.Close()
	l, err := booking.NewSupplyLoader(booking.SupplyLoaderConfig{Store: db, Logger: log})
	if err != nil {
		return err
	}
	res, err := l.Load(ctx, cfg.Campaign, format, b)
	if err != nil {
		var bad *booking.SupplyError
		var short *booking.SupplyConflictError
		switch {
		case errors.As(err, &bad):
			return fmt.Errorf("supply load %s: nothing applied: %d bad row(s): %s", path, len(bad.Rows), bad.Error())
		case errors.As(err, &short):
			return fmt.Errorf("supply load %s: nothing applied: %s", path, short.Error())
		}
		return fmt.Errorf("supply load %s: %w", path, err)
	}
	if res.AlreadyApplied {
		fmt.Fprintf(stdout, "supply %s was already applied to %s at %s: nothing changed\n", res.Digest[:12], res.CampaignID, res.AppliedAt.Format("2006-01-02 15:04:05 MST"))
		return nil
	}
	fmt.Fprintf(stdout, "supply %s applied to %s: %d rows, %d quota rows, %d doses\n", res.Digest[:12], res.CampaignID, res.Rows, res.QuotaRows, res.Doses)
	return nil
}
