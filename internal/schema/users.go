package schema

// UsersCollection is the name of the built-in users collection.
const UsersCollection = "users"

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
	}
}
