// testenv starts a real Kubernetes control plane (embedded etcd,
// kube-apiserver, kube-controller-manager) inside this one process, bound to
// 127.0.0.1, for the project's tests. There is no kubelet: pods stay Pending.
//
//	go -C testenv run . up --dir DIR       # prints "ready KUBECONFIG=DIR/kubeconfig"
//	go -C testenv run . selftest --kubeconfig DIR/kubeconfig
//
// Why in-process: no kube-apiserver/etcd binaries or containers are available
// here, but the Go module proxy serves k8s.io/kubernetes, whose cmd/*/app
// packages are the real components.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
)

const (
	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1" // first IP of serviceCIDR: the `kubernetes` Service
	saIssuer    = "https://kubernetes.default.svc.cluster.local"
	// Controllers the operator's tests rely on. GC handles ownerReferences
	// (CronJob -> Job -> Pod); serviceaccount creates `default` SAs (pods are
	// rejected without one); clusterrole-aggregation fills admin/edit/view.
	defaultControllers = "cronjob-controller,job-controller,garbage-collector-controller," +
		"serviceaccount-token-controller,serviceaccount-controller,namespace-controller," +
		"root-ca-certificate-publisher-controller,ttl-after-finished-controller," +
		"pod-garbage-collector-controller,replicaset-controller,deployment-controller," +
		"statefulset-controller,clusterrole-aggregation-controller"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testenv up --dir DIR | testenv selftest --kubeconfig FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(os.Args[2:])
	case "selftest":
		err = selftest(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (etcd data, certs, logs, kubeconfig); etcd data is wiped on start")
	controllers := fs.String("controllers", defaultControllers, "kube-controller-manager --controllers value")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("--dir is required")
	}
	root, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(root, "kubeconfig")
	// Fresh state every time: tests must not see a previous run's objects.
	for _, p := range []string{kubeconfig, filepath.Join(root, "etcd"), filepath.Join(root, "pki")} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}

	// Component logs are very chatty: send them to a file, keep stdout for
	// the single "ready" line (callers parse it).
	logFile, err := os.OpenFile(filepath.Join(root, "control-plane.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	kfs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(kfs)
	kfs.Set("logtostderr", "false")
	kfs.Set("stderrthreshold", "FATAL")
	kfs.Set("one_output", "true") // else each ERROR line is written 3 times
	klog.SetOutput(logFile)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()

	etcd, etcdURL, err := startEtcd(filepath.Join(root, "etcd"), filepath.Join(root, "etcd.log"))
	if err != nil {
		return err
	}
	var etcdOnce sync.Once // embed.Etcd.Close panics if called twice
	closeEtcd := func() { etcdOnce.Do(etcd.Close) }
	defer closeEtcd()

	p, err := makePKI(filepath.Join(root, "pki"))
	if err != nil {
		return err
	}

	// Bind the listener ourselves (port 0) so there is no free-port race and
	// nothing ever listens on a non-loopback address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := "https://" + ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port

	apiCtx, apiCancel := context.WithCancel(context.Background())
	defer apiCancel()
	apiErr, err := startAPIServer(apiCtx, ln, port, etcdURL, p)
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}

	tmpKubeconfig := kubeconfig + ".tmp"
	defer os.Remove(tmpKubeconfig) // left over only if start-up failed
	if err := p.writeKubeconfig(tmpKubeconfig, server, p.admin); err != nil {
		return err
	}
	client, err := clientFor(tmpKubeconfig)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, apiErr, 2*time.Minute, "apiserver /readyz", func(ctx context.Context) bool {
		code := 0
		client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
		return code == 200
	}); err != nil {
		return err
	}

	kcmKubeconfig := p.path("kcm.kubeconfig")
	if err := p.writeKubeconfig(kcmKubeconfig, server, p.kcm); err != nil {
		return err
	}
	kcmCtx, kcmCancel := context.WithCancel(context.Background())
	defer kcmCancel()
	kcmErr, err := startControllerManager(kcmCtx, kcmKubeconfig, *controllers, p)
	if err != nil {
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	// The `default` ServiceAccount appears only once the controller manager
	// runs (it uses per-controller SA tokens, so this also proves token
	// issuance). Pods cannot be created before it exists.
	if err := waitFor(ctx, kcmErr, time.Minute, "default ServiceAccount", func(ctx context.Context) bool {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return err
	}

	// Publish the kubeconfig only when usable, so its presence means ready.
	if err := os.Rename(tmpKubeconfig, kubeconfig); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testenv: API %s, etcd %s, started in %.1fs, logs in %s\n", server, etcdURL, time.Since(start).Seconds(), logFile.Name())
	fmt.Printf("ready KUBECONFIG=%s\n", kubeconfig)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-apiErr:
		runErr = fmt.Errorf("kube-apiserver exited: %v", runErr)
	case runErr = <-kcmErr:
		runErr = fmt.Errorf("kube-controller-manager exited: %v", runErr)
	}
	os.Remove(kubeconfig)
	// Stop in reverse dependency order so nothing logs errors about a
	// vanished API server or etcd.
	kcmCancel()
	waitExit(kcmErr, 30*time.Second)
	apiCancel()
	waitExit(apiErr, 60*time.Second)
	closeEtcd()
	fmt.Fprintln(os.Stderr, "testenv: stopped")
	return runErr
}

func startAPIServer(ctx context.Context, ln net.Listener, port int, etcdURL string, p *pki) (<-chan error, error) {
	s := apiserveroptions.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	// Same flags a real deployment would pass, so behaviour matches a cluster.
	if err := fs.Parse([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--endpoint-reconciler-type=none", // 127.0.0.1 is not a valid Endpoints address
		"--tls-cert-file=" + p.path("apiserver.crt"),
		"--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=" + saIssuer,
		"--service-account-key-file=" + p.saPubFile,
		"--service-account-signing-key-file=" + p.saKeyFile,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--profiling=false",
	}); err != nil {
		return nil, err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	s.SecureServing.Listener = ln
	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, errors.Join(errs...)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- apiserver.Run(ctx, completed); close(errCh) }()
	return errCh, nil
}

func startControllerManager(ctx context.Context, kubeconfig, controllers string, p *pki) (<-chan error, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	all, disabled, aliases := kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases()
	named := s.Flags(all, disabled, aliases)
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse([]string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--secure-port=0", // no health/metrics listener needed
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + p.saKeyFile,
		"--root-ca-file=" + p.path("ca.crt"),
		"--service-cluster-ip-range=" + serviceCIDR,
	}); err != nil {
		return nil, err
	}
	s.ParsedFlags = &named
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	c, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return nil, err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- kcm.Run(ctx, c.Complete()); close(errCh) }()
	return errCh, nil
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// waitFor polls cond until true, the component exits, ctx ends or timeout.
func waitFor(ctx context.Context, exited <-chan error, timeout time.Duration, what string, cond func(context.Context) bool) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("exited early: %v", err)
		default:
		}
		return cond(ctx), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func waitExit(ch <-chan error, timeout time.Duration) {
	select {
	case err := <-ch:
		if err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "context canceled") {
			fmt.Fprintln(os.Stderr, "testenv: shutdown:", err)
		}
	case <-time.After(timeout):
		fmt.Fprintln(os.Stderr, "testenv: shutdown timed out")
	}
}
