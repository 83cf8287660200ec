package config

import (
	"strings"
	"testing"
)

// TestCostKeys: the prices come from the file (numbers and quoted numbers) and the environment,
// default to 0 (counts without money) and USD.
func TestCostKeys(t *testing.T) {
	unsetSettingVariables(t)
	cfg, err := LoadFlags(flagSet(t, "--config", writeConfig(t, "s3:\n  bucket: b\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cost != (CostConfig{Currency: "USD"}) || cfg.Cost.Priced() {
		t.Errorf("defaults: %+v, want no prices and USD", cfg.Cost)
	}
	yaml := "s3:\n  bucket: b\ncost:\n  egress_per_gib: 0.09\n  get_per_1000: \"0.0004\"\n  storage_per_gib_month: 1\n  currency: EUR\n"
	cfg, err = LoadFlags(flagSet(t, "--config", writeConfig(t, yaml)))
	if err != nil {
		t.Fatal(err)
	}
	if want := (CostConfig{EgressPerGiB: 0.09, GetPer1000: 0.0004, StoragePerGiBMonth: 1, Currency: "EUR"}); cfg.Cost != want {
		t.Errorf("from the file: %+v, want %+v", cfg.Cost, want)
	}
	t.Setenv("FEDICACHE_COST_EGRESS_PER_GIB", "0.01")
	t.Setenv("FEDICACHE_COST_CURRENCY", "CHF")
	cfg, err = LoadFlags(flagSet(t, "--config", writeConfig(t, yaml)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cost.EgressPerGiB != 0.01 || cfg.Cost.Currency != "CHF" || cfg.Cost.GetPer1000 != 0.0004 {
		t.Errorf("the environment over the file: %+v", cfg.Cost)
	}
}

// TestCostKeysRefused: a negative price, one that is no number (or not a finite one) and a
// currency that is no label are refused, each naming its key and an example.
func TestCostKeysRefused(t *testing.T) {
	unsetSettingVariables(t)
	for _, tc := range []struct {
		name, cost string
		env        map[string]string
		want       []string
	}{
		{"negative", "  egress_per_gib: -0.09\n", nil, []string{"cost.egress_per_gib", `"-0.09" is negative`, "e.g. cost.egress_per_gib: 0.09"}},
		{"a word", "  get_per_1000: cheap\n", nil, []string{"cost.get_per_1000", `"cheap" is not a number`, "e.g. cost.get_per_1000: 0.0004"}},
		{"infinite", "  storage_per_gib_month: .inf\n", nil, []string{"cost.storage_per_gib_month", "is not a number", "e.g. cost.storage_per_gib_month: 0.023"}},
		{"not a number", "  storage_per_gib_month: .nan\n", nil, []string{"cost.storage_per_gib_month", "is not a number"}},
		{"a list", "  egress_per_gib: [1, 2]\n", nil, []string{"cost.egress_per_gib", "is not a number"}},
		{"negative from the environment", "", map[string]string{"FEDICACHE_COST_GET_PER_1000": "-1"}, []string{"cost.get_per_1000", `"-1" is negative`}},
		{"empty from the environment", "", map[string]string{"FEDICACHE_COST_EGRESS_PER_GIB": ""}, []string{"cost.egress_per_gib", `"" is not a number`, "FEDICACHE_COST_EGRESS_PER_GIB is set but empty"}},
		{"currency with a space", "  currency: US dollars\n", nil, []string{"cost.currency", `"US dollars" is not a currency label`, "e.g. cost.currency: EUR"}},
		{"empty currency", "  currency: \"\"\n", nil, []string{"cost.currency", `"" is not a currency label`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			yaml := "s3:\n  bucket: b\n"
			if tc.cost != "" {
				yaml += "cost:\n" + tc.cost
			}
			_, err := LoadFlags(flagSet(t, "--config", writeConfig(t, yaml)))
			msg := invalid(t, err)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the message does not say %q:\n%s", w, msg)
				}
			}
		})
	}
}
