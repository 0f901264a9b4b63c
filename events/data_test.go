package events

import (
	"strings"
	"testing"
)

func TestCreditValidatedValidateRequiresAReasonOnlyWhenNotValid(t *testing.T) {
	tests := []struct {
		name string
		in   CreditValidated
		ok   bool
	}{
		{"approved", CreditValidated{"o-1", "alice", 100, true, ""}, true},
		{"refused with reason", CreditValidated{"o-1", "alice", 100, false, ReasonInsufficientCredit}, true},
		{"refused without reason", CreditValidated{"o-1", "alice", 100, false, ""}, false},
		{"refused with unknown reason", CreditValidated{"o-1", "alice", 100, false, "nope"}, false},
		{"approved with reason", CreditValidated{"o-1", "alice", 100, true, ReasonUnknownCustomer}, false},
		{"negative amount", CreditValidated{"o-1", "alice", -1, true, ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestKitchenStepAndFailureReportValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"step ok", KitchenStep{"o-1", "maria"}.Validate(), true},
		{"step without by", KitchenStep{"o-1", " "}.Validate(), false},
		{"step with control characters", KitchenStep{"o-1", "a\nb"}.Validate(), false},
		{"step without order", KitchenStep{"", "maria"}.Validate(), false},
		{"failure ok", FailureReport{"o-1", "maria", "oven broke"}.Validate(), true},
		{"failure without reason", FailureReport{"o-1", "maria", ""}.Validate(), false},
		{"failure reason too long", FailureReport{"o-1", "maria", strings.Repeat("x", MaxReason+1)}.Validate(), false},
	}
	for _, tt := range tests {
		if (tt.err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok=%v", tt.name, tt.err, tt.ok)
		}
	}
}
