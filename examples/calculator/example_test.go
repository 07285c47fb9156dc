package calculator_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/examples/calculator"
)

func TestMain(m *testing.M) {
	procxy.Main()                            // the proxies' children are this test binary, re-run
	os.Setenv("GORACE", "atexit_sleep_ms=0") // race-built children exit without a pause
	goleak.VerifyTestMain(m)
}

func ExampleNewCalculatorProxy() {
	ctx := context.Background()
	calc, err := calculator.NewCalculatorProxy(ctx) // a Calculator in a child process
	if err != nil {
		log.Fatal(err)
	}
	defer calc.Close()

	sum, err := calc.Add(ctx, 2, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)
	// Output: 5
}

func ExampleCalculatorProxy_Div() {
	ctx := context.Background()
	calc, err := calculator.NewCalculatorProxy(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer calc.Close()

	_, err = calc.Div(ctx, 1, 0)
	fmt.Println(err)
	fmt.Println(errors.Is(err, calculator.ErrDivByZero))
	// Output:
	// procxy: Calculator.Div: division by zero
	// true
}

func ExampleCalculatorProxy_Fibonacci() {
	ctx := context.Background()
	calc, err := calculator.NewCalculatorProxy(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer calc.Close()

	for n, err := range calc.Fibonacci(ctx, 10) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(n, " ")
	}
	fmt.Println()
	// Output: 0 1 1 2 3 5 8 13 21 34
}
