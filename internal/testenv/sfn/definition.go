package sfn

import (
	"fmt"

	"github.com/dsync-export/dsync-export/internal/samtemplate"
)

// Definition returns the inline Definition of the state machine logicalID
// (AWS::Serverless::StateMachine) of the SAM template at templatePath, as
// JSON, with every ${Name} replaced by subs[Name] as CloudFormation does with
// DefinitionSubstitutions. It fails naming the resource, the missing
// Definition, or every ${…} that subs leaves unresolved.
func Definition(templatePath, logicalID string, subs map[string]string) ([]byte, error) {
	t, err := samtemplate.Load(templatePath)
	if err != nil {
		return nil, fmt.Errorf("sfn: %w", err)
	}
	def, err := t.StateMachineDefinition(logicalID, subs)
	if err != nil {
		return nil, fmt.Errorf("sfn: %w", err)
	}
	return def, nil
}
