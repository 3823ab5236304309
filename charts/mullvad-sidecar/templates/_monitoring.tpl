{{- /* Labels of the chart's monitoring and NetworkPolicy objects. */ -}}
{{- define "mullvad-sidecar.objectLabels" -}}
app.kubernetes.io/name: mullvad-sidecar
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
