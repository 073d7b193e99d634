package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/protocol"
)

// InputSchemaVersion is the version of the input document (input.schema_version),
// so operator policies can check what they read as the document grows.
// Additions keep the version; a change of meaning bumps it.
const InputSchemaVersion = "1"

// inputDoc is the input document, exactly as policies/schemas/input.json
// describes it. Every slice is non-nil so the document never holds a null
// where the schema says array.
type inputDoc struct {
	SchemaVersion string                `json:"schema_version"`
	Request       inputRequest          `json:"request"`
	Peer          Peer                  `json:"peer"`
	Account       inputAccount          `json:"account"`
	Identity      Identity              `json:"identity"`
	Workspace     mapper.WorkspaceFacts `json:"workspace"`
	Cwd           mapper.CwdFacts       `json:"cwd"`
	Make          *mapper.MakeFacts     `json:"make"`
	Timeout       inputTimeout          `json:"timeout"`
	Env           map[string]string     `json:"env"`
	Load          Load                  `json:"load"`
}

type inputRequest struct {
	SchemaVersion string   `json:"schema_version"`
	Type          string   `json:"type"`
	RequestID     string   `json:"request_id"`
	Command       string   `json:"command"`
	Args          []string `json:"args"`
	Cwd           string   `json:"cwd"`
	TimeoutSec    *int     `json:"timeout_sec"`
	Env           []string `json:"env"` // names only: values go to input.env
}

type inputAccount struct {
	Known      bool              `json:"known"`
	Name       string            `json:"name"`
	Home       string            `json:"home"`
	UID        int               `json:"uid"`
	GID        int               `json:"gid"`
	Groups     []int             `json:"groups"`
	GroupNames map[string]string `json:"group_names"`
}

type inputTimeout struct {
	RequestedSec *int `json:"requested_sec"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// buildInput turns the facts into the input document. identity is
// computed by the caller (ComputeIdentity) so the same value is used for
// the policy and for the job.
func buildInput(f Facts, id Identity) inputDoc {
	req := f.Request
	typ := req.Type
	if typ == "" {
		typ = protocol.TypeBuild
	}
	names := make([]string, 0, len(req.Env))
	env := make(map[string]string, len(req.Env))
	for k, v := range req.Env {
		names = append(names, k)
		env[k] = v
	}
	slices.Sort(names)

	acc := inputAccount{
		Known: f.Account.Known, Name: f.Account.Name, Home: f.Account.Home,
		UID: f.Account.UID, GID: f.Account.GID, Groups: nonNil(slices.Clone(f.Account.Groups)),
		GroupNames: make(map[string]string, len(f.Account.GroupNames)),
	}
	for gid, name := range f.Account.GroupNames {
		acc.GroupNames[strconv.Itoa(gid)] = name
	}
	peer := f.Peer
	peer.Groups = nonNil(slices.Clone(peer.Groups))

	doc := inputDoc{
		SchemaVersion: InputSchemaVersion,
		Request: inputRequest{
			SchemaVersion: req.SchemaVersion, Type: typ, RequestID: req.RequestID,
			Command: req.Command, Args: nonNil(slices.Clone(req.Args)), Cwd: req.Cwd,
			TimeoutSec: req.TimeoutSec, Env: names,
		},
		Peer:     peer,
		Account:  acc,
		Identity: id,
		Timeout:  inputTimeout{RequestedSec: req.TimeoutSec},
		Env:      env,
		Load:     f.Load,
	}
	doc.Identity.Groups = nonNil(doc.Identity.Groups)
	doc.Identity.Dropped = nonNil(doc.Identity.Dropped)
	if f.Mapping != nil {
		doc.Workspace = f.Mapping.Workspace
		doc.Cwd = f.Mapping.Cwd
		if mk := f.Mapping.Make; mk != nil {
			m := *mk
			m.Argv = nonNil(m.Argv)
			m.Directories = nonNil(m.Directories)
			m.Makefiles = nonNil(m.Makefiles)
			m.Includes = nonNil(m.Includes)
			m.OtherFiles = nonNil(m.OtherFiles)
			m.Targets = nonNil(m.Targets)
			m.Assignments = nonNil(m.Assignments)
			m.Eval = nonNil(m.Eval)
			m.Options = nonNil(m.Options)
			doc.Make = &m
		}
	} else {
		// No mapping facts: a document that every confinement rule denies
		// (and Go refuses on its own, see invariants).
		doc.Cwd.Container = req.Cwd
	}
	return doc
}

// toJSONValue converts v to the generic JSON form (map[string]any,
// []any, json.Number, string, bool, nil) that OPA and the decision log use.
func toJSONValue(v any) (any, error) {
	bs, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode input document: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(bs))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode input document: %w", err)
	}
	return out, nil
}
