package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

func main() {
	if os.Args[1] == "load" {
		c, _ := strconv.Atoi(os.Args[3])
		d, _ := time.ParseDuration(os.Args[4])
		res, err := loadgen.Run(context.Background(), loadgen.Config{URL: os.Args[2], Concurrency: c, EventsPerPost: 10, Duration: d})
		fmt.Printf("%.0f events/s p50 %v p99 %v err %v %v\n", res.EventsPerSec(), res.P50, res.P99, err, res.Non200)
		return
	}
	n, _ := strconv.Atoi(os.Args[2])
	ct, body := loadgen.Post("", fmt.Sprint(time.Now().UnixNano()), 0, n)
	fmt.Println("body bytes", len(body))
	t := time.Now()
	resp, err := http.Post(os.Args[1], ct, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status, time.Since(t))
}
