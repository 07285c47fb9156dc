package worker

// envModuleName is the module name a Procwire parent gives its child
// (PROCWIRE_MODULE_NAME); the worker's observations use it as the service.
const envModuleName = "PROCWIRE_MODULE_NAME"
