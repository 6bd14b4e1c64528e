package samtemplate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const machineTemplate = `
Resources:
  Fn:
    Type: AWS::Serverless::Function
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Type: STANDARD
      DefinitionSubstitutions:
        FnArn: !GetAtt Fn.Arn
        Other: literal
      Definition:
        Comment: "a ${FnArn} in a comment, twice: ${FnArn}"
        StartAt: Work
        States:
          Work:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Parameters:
              FunctionName: ${FnArn}
              Payload: {step: plan, "trigger.$": "$", flag: true, ratio: 0.5, none: null, hex: 0x10, quoted: "42"}
            Retry: &retry
              - ErrorEquals: [Export.Retryable]
                IntervalSeconds: 2
                MaxAttempts: 3
                BackoffRate: 2
            Next: Units
          Units:
            Type: Map
            MaxConcurrency: 8
            ItemProcessor:
              ProcessorConfig: {Mode: DISTRIBUTED, ExecutionType: STANDARD}
              StartAt: Chunk
              States:
                Chunk:
                  Type: Task
                  Resource: arn:aws:states:::lambda:invoke
                  Parameters: {FunctionName: "${FnArn}", Payload.$: $}
                  Retry: *retry
                  End: true
            End: true
  Plain:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      Definition: {StartAt: P, States: {P: {Type: Pass, End: true}}}
  NoDefinition:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachine.asl.json
  Empty:
    Type: AWS::Serverless::StateMachine
  Intrinsic:
    Type: AWS::Serverless::StateMachine
    Properties:
      Definition:
        StartAt: A
        States:
          A: {Type: Task, Resource: !GetAtt Fn.Arn, End: true}
  Inf:
    Type: AWS::Serverless::StateMachine
    Properties:
      Definition: {StartAt: A, States: {A: {Type: Wait, Seconds: .inf, End: true}}}
`

func TestStateMachineDefinition(t *testing.T) {
	tmpl, err := Parse([]byte(machineTemplate))
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:lambda:us-east-1:123456789012:function:f"
	got, err := tmpl.StateMachineDefinition("Machine", map[string]string{"FnArn": arn, "Unused": "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Comment":"a ` + arn + ` in a comment, twice: ` + arn + `","StartAt":"Work","States":{` +
		`"Work":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"` + arn + `",` +
		`"Payload":{"step":"plan","trigger.$":"$","flag":true,"ratio":0.5,"none":null,"hex":16,"quoted":"42"}},` +
		`"Retry":[{"ErrorEquals":["Export.Retryable"],"IntervalSeconds":2,"MaxAttempts":3,"BackoffRate":2}],"Next":"Units"},` +
		`"Units":{"Type":"Map","MaxConcurrency":8,"ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"},` +
		`"StartAt":"Chunk","States":{"Chunk":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",` +
		`"Parameters":{"FunctionName":"` + arn + `","Payload.$":"$"},` +
		`"Retry":[{"ErrorEquals":["Export.Retryable"],"IntervalSeconds":2,"MaxAttempts":3,"BackoffRate":2}],"End":true}}},"End":true}}}`
	if string(got) != want {
		t.Errorf("definition:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Error("the definition is not valid JSON")
	}

	subs, err := tmpl.StateMachineSubstitutions("Machine")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range subs {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"FnArn", "Other"}, names); diff != "" {
		t.Errorf("substitution names (-want +got):\n%s", diff)
	}
	if text, _ := Text(subs[0].Value); text != "${Fn.Arn}" {
		t.Errorf("FnArn value = %q, want the !GetAtt Fn.Arn node", text)
	}

	plain, err := tmpl.StateMachineDefinition("Plain", nil)
	if err != nil || string(plain) != `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}` {
		t.Errorf("AWS::StepFunctions::StateMachine definition = %s, %v", plain, err)
	}
}

func TestStateMachineDefinitionErrors(t *testing.T) {
	tmpl, err := Parse([]byte(machineTemplate))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		subs map[string]string
		want []string
	}{
		{"Machine", nil, []string{"unresolved substitution ${FnArn}", "$.Comment", "$.States.Work.Parameters.FunctionName"}},
		{"Machine", map[string]string{"fnarn": "x"}, []string{"${FnArn}"}},
		{"Missing", nil, []string{"no resource Missing"}},
		{"Fn", nil, []string{"resource Fn has type AWS::Serverless::Function, not AWS::Serverless::StateMachine"}},
		{"NoDefinition", nil, []string{"NoDefinition has a DefinitionUri, not an inline Definition"}},
		{"Empty", nil, []string{"Empty has no Definition property"}},
		{"Intrinsic", nil, []string{"$.States.A.Resource", "intrinsic function Fn::GetAtt", "DefinitionSubstitutions"}},
		{"Inf", nil, []string{"$.States.A.Seconds", ".inf has no JSON form"}},
	} {
		_, err := tmpl.StateMachineDefinition(tc.id, tc.subs)
		if err == nil {
			t.Errorf("StateMachineDefinition(%s, %v) succeeded", tc.id, tc.subs)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("StateMachineDefinition(%s, %v) error %q lacks %q", tc.id, tc.subs, err, w)
			}
		}
	}
	if _, err := tmpl.StateMachineSubstitutions("Fn"); err == nil {
		t.Error("StateMachineSubstitutions of a function succeeded")
	}
	if subs, err := tmpl.StateMachineSubstitutions("Plain"); err != nil || len(subs) != 0 {
		t.Errorf("StateMachineSubstitutions(Plain) = %v, %v; want none", subs, err)
	}
}
