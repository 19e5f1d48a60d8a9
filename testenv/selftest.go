package main

// selftest proves the control plane is a real one: RBAC/authn via the admin
// cert, the CronJob controller creating Jobs, and CEL validation on CRDs.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

func selftest(args []string) error {
	fs := flag.NewFlagSet("selftest", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig written by `up`")
	fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cs, err := clientFor(*kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var names []string
	for _, ns := range nss.Items {
		names = append(names, ns.Name)
	}
	fmt.Println("ok namespaces:", strings.Join(names, ","))

	// --- CronJob -> Job (cronjob controller) ---
	ns := "selftest-" + fmt.Sprint(time.Now().Unix())
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "every-minute"},
		Spec: batchv1.CronJobSpec{
			Schedule: "*/1 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"true"}}},
			}}}},
		},
	}
	if _, err := cs.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		return err
	}
	t0 := time.Now()
	var job *batchv1.Job
	err = wait.PollUntilContextTimeout(ctx, time.Second, 75*time.Second, true, func(ctx context.Context) (bool, error) {
		jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(jobs.Items) == 0 {
			return false, nil
		}
		job = &jobs.Items[0]
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("no Job from CronJob within 75s: %w", err)
	}
	fmt.Printf("ok cronjob created job %s after %.0fs (owner %s)\n", job.Name, time.Since(t0).Seconds(), job.OwnerReferences[0].Kind)
	// The Job controller should create a Pod (it stays Pending: no kubelet).
	err = wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("job controller created no pod: %w", err)
	}
	fmt.Println("ok job controller created a pod (Pending, no kubelet)")

	// --- CRD with a CEL rule ---
	ax, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crd := &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.selftest.example.com"},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: "selftest.example.com",
			Names: apiextv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextv1.NamespaceScoped,
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": {
						Type: "object",
						Properties: map[string]apiextv1.JSONSchemaProps{
							"min": {Type: "integer"}, "max": {Type: "integer"},
						},
						XValidations: apiextv1.ValidationRules{{Rule: "self.min <= self.max", Message: "min must be <= max"}},
					}},
				}},
			}},
		},
	}
	if _, err := ax.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	res := dyn.Resource(schema.GroupVersionResource{Group: "selftest.example.com", Version: "v1", Resource: "widgets"}).Namespace(ns)
	widget := func(name string, min, max int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "selftest.example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": name},
			"spec":     map[string]any{"min": min, "max": max},
		}}
	}
	// The CRD becomes servable shortly after creation (Established).
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := res.Create(ctx, widget("good", 1, 2), metav1.CreateOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("valid Widget never accepted: %w", err)
	}
	fmt.Println("ok valid custom resource accepted")
	_, err = res.Create(ctx, widget("bad", 3, 2), metav1.CreateOptions{})
	if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "min must be <= max") {
		return fmt.Errorf("CEL rule not enforced, got: %v", err)
	}
	fmt.Println("ok CEL rule rejected invalid object:", err)

	// Clean up; namespace deletion exercises the namespace controller + GC.
	if err := ax.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return errors.New("namespace not deleted within 60s")
	}
	fmt.Println("ok namespace deleted")
	fmt.Println("selftest passed")
	return nil
}
