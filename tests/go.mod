module github.com/cupcake-factory/cupcake-factory/tests

go 1.26

require github.com/cupcake-factory/cupcake-factory v0.0.0

replace github.com/cupcake-factory/cupcake-factory => ../
