package engine

import (
	"reflect"
	"strings"

	"github.com/build-service/build-service/config"
)

// configDoc renders the daemon's config as data.config: the TOML keys
// (snake_case) and values, nil slices and maps as empty, a nil pointer as
// null. One derived key is added, build.limits.memory_max_bytes, so a
// policy never parses sizes itself (and cannot parse them differently from
// the daemon).
func configDoc(cfg *config.Config) map[string]any {
	doc, _ := tomlValue(reflect.ValueOf(*cfg)).(map[string]any)
	if build, ok := doc["build"].(map[string]any); ok {
		if limits, ok := build["limits"].(map[string]any); ok {
			limits["memory_max_bytes"] = cfg.Build.Limits.MemoryMaxBytes()
		}
	}
	return doc
}

func tomlValue(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return tomlValue(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = tomlValue(v.Field(i))
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, 0, v.Len())
		for i := range v.Len() {
			out = append(out, tomlValue(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = tomlValue(iter.Value())
		}
		return out
	default:
		return v.Interface()
	}
}
