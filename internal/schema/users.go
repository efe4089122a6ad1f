package schema

import "maps"

// UsersCollection is the name of the built-in users collection.
const UsersCollection = "users"

// RolesField is the users field that holds a user's roles (a JSON list of
// strings). Only administrators may set it.
const RolesField = "roles"

// Default rules of the users collection: a signed-in user sees and
// edits their own record (but not their roles); everything else is for
// administrators. A project may replace any of them.
var usersRules = Rules{
	OpList:   "record.id == auth.id",
	OpView:   "record.id == auth.id",
	OpUpdate: "record.id == auth.id",
}

// BuiltinUsers returns the built-in users collection. A project may add
// fields, indexes and rules to it; its own fields cannot be redefined.
func BuiltinUsers() *Collection {
	max := 320.0
	return &Collection{
		Name:   UsersCollection,
		System: true,
		Fields: []*Field{
			{Name: "email", Type: Text, Required: true, Max: &max},
			{Name: "name", Type: Text},
			{Name: "roles", Type: JSON},
		},
		Indexes: []Index{{Fields: []string{"email"}, Unique: true}},
		Rules:   maps.Clone(usersRules),
	}
}
