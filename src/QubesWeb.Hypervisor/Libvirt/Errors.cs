// Wraps virGetLastError / virResetLastError and the virError enums (virterror.h)
using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Libvirt;

/// A failed libvirt call. Message is libvirt's own text, which already names the object involved.
public sealed class LibvirtException : Exception
{
    public LibvirtException(string message, ErrorNumber code, ErrorDomain domain, ErrorLevel level)
        : base(message)
    {
        Code = code;
        Domain = domain;
        Level = level;
    }

    public ErrorNumber Code { get; }
    public ErrorDomain Domain { get; }
    public ErrorLevel Level { get; }

    /// Builds the exception from this OS thread's libvirt error and clears it. libvirt keeps the last error
    /// per thread, so this must run right after the failing call with no await in between.
    public static unsafe LibvirtException FromLastError()
    {
        var error = Native.virGetLastError();
        if (error == null)
        {
            // Some entry points fail without raising (e.g. a NULL argument caught before the driver runs).
            return new LibvirtException("libvirt call failed without reporting an error", ErrorNumber.InternalError,
                ErrorDomain.None, ErrorLevel.Error);
        }
        var exception = new LibvirtException(
            Marshal.PtrToStringUTF8(error->Message) ?? "libvirt error without message",
            (ErrorNumber)error->Code, (ErrorDomain)error->Domain, (ErrorLevel)error->Level);
        Native.virResetLastError();
        return exception;
    }

    /// Returns rc when libvirt reported success (rc >= 0), throws the thread's error otherwise.
    internal static int Check(int rc) => rc < 0 ? throw FromLastError() : rc;

    /// For functions that report failure with a NULL pointer.
    internal static nint Check(nint ptr) => ptr == 0 ? throw FromLastError() : ptr;

    internal static T Check<T>(T handle) where T : SafeHandle =>
        handle.IsInvalid ? throw FromLastError() : handle;
}

/// virErrorLevel
public enum ErrorLevel
{
    /// VIR_ERR_NONE
    None = 0,
    /// VIR_ERR_WARNING
    Warning = 1,
    /// VIR_ERR_ERROR
    Error = 2,
}

/// virErrorDomain: which part of libvirt raised the error.
public enum ErrorDomain
{
    /// VIR_FROM_NONE
    None = 0,
    /// VIR_FROM_XEN
    Xen = 1,
    /// VIR_FROM_XEND
    Xend = 2,
    /// VIR_FROM_XENSTORE
    Xenstore = 3,
    /// VIR_FROM_SEXPR
    Sexpr = 4,
    /// VIR_FROM_XML
    Xml = 5,
    /// VIR_FROM_DOM
    Dom = 6,
    /// VIR_FROM_RPC
    Rpc = 7,
    /// VIR_FROM_PROXY
    Proxy = 8,
    /// VIR_FROM_CONF
    Conf = 9,
    /// VIR_FROM_QEMU
    Qemu = 10,
    /// VIR_FROM_NET
    Net = 11,
    /// VIR_FROM_TEST
    Test = 12,
    /// VIR_FROM_REMOTE
    Remote = 13,
    /// VIR_FROM_OPENVZ
    Openvz = 14,
    /// VIR_FROM_XENXM
    Xenxm = 15,
    /// VIR_FROM_STATS_LINUX
    StatsLinux = 16,
    /// VIR_FROM_LXC
    Lxc = 17,
    /// VIR_FROM_STORAGE
    Storage = 18,
    /// VIR_FROM_NETWORK
    Network = 19,
    /// VIR_FROM_DOMAIN
    Domain = 20,
    /// VIR_FROM_UML
    Uml = 21,
    /// VIR_FROM_NODEDEV
    Nodedev = 22,
    /// VIR_FROM_XEN_INOTIFY
    XenInotify = 23,
    /// VIR_FROM_SECURITY
    Security = 24,
    /// VIR_FROM_VBOX
    Vbox = 25,
    /// VIR_FROM_INTERFACE
    Interface = 26,
    /// VIR_FROM_ONE
    One = 27,
    /// VIR_FROM_ESX
    Esx = 28,
    /// VIR_FROM_PHYP
    Phyp = 29,
    /// VIR_FROM_SECRET
    Secret = 30,
    /// VIR_FROM_CPU
    Cpu = 31,
    /// VIR_FROM_XENAPI
    Xenapi = 32,
    /// VIR_FROM_NWFILTER
    Nwfilter = 33,
    /// VIR_FROM_HOOK
    Hook = 34,
    /// VIR_FROM_DOMAIN_SNAPSHOT
    DomainSnapshot = 35,
    /// VIR_FROM_AUDIT
    Audit = 36,
    /// VIR_FROM_SYSINFO
    Sysinfo = 37,
    /// VIR_FROM_STREAMS
    Streams = 38,
    /// VIR_FROM_VMWARE
    Vmware = 39,
    /// VIR_FROM_EVENT
    Event = 40,
    /// VIR_FROM_LIBXL
    Libxl = 41,
    /// VIR_FROM_LOCKING
    Locking = 42,
    /// VIR_FROM_HYPERV
    Hyperv = 43,
    /// VIR_FROM_CAPABILITIES
    Capabilities = 44,
    /// VIR_FROM_URI
    Uri = 45,
    /// VIR_FROM_AUTH
    Auth = 46,
    /// VIR_FROM_DBUS
    Dbus = 47,
    /// VIR_FROM_PARALLELS
    Parallels = 48,
    /// VIR_FROM_DEVICE
    Device = 49,
    /// VIR_FROM_SSH
    Ssh = 50,
    /// VIR_FROM_LOCKSPACE
    Lockspace = 51,
    /// VIR_FROM_INITCTL
    Initctl = 52,
    /// VIR_FROM_IDENTITY
    Identity = 53,
    /// VIR_FROM_CGROUP
    Cgroup = 54,
    /// VIR_FROM_ACCESS
    Access = 55,
    /// VIR_FROM_SYSTEMD
    Systemd = 56,
    /// VIR_FROM_BHYVE
    Bhyve = 57,
    /// VIR_FROM_CRYPTO
    Crypto = 58,
    /// VIR_FROM_FIREWALL
    Firewall = 59,
    /// VIR_FROM_POLKIT
    Polkit = 60,
    /// VIR_FROM_THREAD
    Thread = 61,
    /// VIR_FROM_ADMIN
    Admin = 62,
    /// VIR_FROM_LOGGING
    Logging = 63,
    /// VIR_FROM_XENXL
    Xenxl = 64,
    /// VIR_FROM_PERF
    Perf = 65,
    /// VIR_FROM_LIBSSH
    Libssh = 66,
    /// VIR_FROM_RESCTRL
    Resctrl = 67,
    /// VIR_FROM_FIREWALLD
    Firewalld = 68,
    /// VIR_FROM_DOMAIN_CHECKPOINT
    DomainCheckpoint = 69,
    /// VIR_FROM_TPM
    Tpm = 70,
    /// VIR_FROM_BPF
    Bpf = 71,
    /// VIR_FROM_CH
    Ch = 72,
}

/// virErrorNumber
public enum ErrorNumber
{
    /// VIR_ERR_OK
    Ok = 0,
    /// VIR_ERR_INTERNAL_ERROR
    InternalError = 1,
    /// VIR_ERR_NO_MEMORY
    NoMemory = 2,
    /// VIR_ERR_NO_SUPPORT
    NoSupport = 3,
    /// VIR_ERR_UNKNOWN_HOST
    UnknownHost = 4,
    /// VIR_ERR_NO_CONNECT
    NoConnect = 5,
    /// VIR_ERR_INVALID_CONN
    InvalidConn = 6,
    /// VIR_ERR_INVALID_DOMAIN
    InvalidDomain = 7,
    /// VIR_ERR_INVALID_ARG
    InvalidArg = 8,
    /// VIR_ERR_OPERATION_FAILED
    OperationFailed = 9,
    /// VIR_ERR_GET_FAILED
    GetFailed = 10,
    /// VIR_ERR_POST_FAILED
    PostFailed = 11,
    /// VIR_ERR_HTTP_ERROR
    HttpError = 12,
    /// VIR_ERR_SEXPR_SERIAL
    SexprSerial = 13,
    /// VIR_ERR_NO_XEN
    NoXen = 14,
    /// VIR_ERR_XEN_CALL
    XenCall = 15,
    /// VIR_ERR_OS_TYPE
    OsType = 16,
    /// VIR_ERR_NO_KERNEL
    NoKernel = 17,
    /// VIR_ERR_NO_ROOT
    NoRoot = 18,
    /// VIR_ERR_NO_SOURCE
    NoSource = 19,
    /// VIR_ERR_NO_TARGET
    NoTarget = 20,
    /// VIR_ERR_NO_NAME
    NoName = 21,
    /// VIR_ERR_NO_OS
    NoOs = 22,
    /// VIR_ERR_NO_DEVICE
    NoDevice = 23,
    /// VIR_ERR_NO_XENSTORE
    NoXenstore = 24,
    /// VIR_ERR_DRIVER_FULL
    DriverFull = 25,
    /// VIR_ERR_CALL_FAILED
    CallFailed = 26,
    /// VIR_ERR_XML_ERROR
    XmlError = 27,
    /// VIR_ERR_DOM_EXIST
    DomExist = 28,
    /// VIR_ERR_OPERATION_DENIED
    OperationDenied = 29,
    /// VIR_ERR_OPEN_FAILED
    OpenFailed = 30,
    /// VIR_ERR_READ_FAILED
    ReadFailed = 31,
    /// VIR_ERR_PARSE_FAILED
    ParseFailed = 32,
    /// VIR_ERR_CONF_SYNTAX
    ConfSyntax = 33,
    /// VIR_ERR_WRITE_FAILED
    WriteFailed = 34,
    /// VIR_ERR_XML_DETAIL
    XmlDetail = 35,
    /// VIR_ERR_INVALID_NETWORK
    InvalidNetwork = 36,
    /// VIR_ERR_NETWORK_EXIST
    NetworkExist = 37,
    /// VIR_ERR_SYSTEM_ERROR
    SystemError = 38,
    /// VIR_ERR_RPC
    RPC = 39,
    /// VIR_ERR_GNUTLS_ERROR
    GnutlsError = 40,
    /// VIR_WAR_NO_NETWORK
    WarNoNetwork = 41,
    /// VIR_ERR_NO_DOMAIN
    NoDomain = 42,
    /// VIR_ERR_NO_NETWORK
    NoNetwork = 43,
    /// VIR_ERR_INVALID_MAC
    InvalidMac = 44,
    /// VIR_ERR_AUTH_FAILED
    AuthFailed = 45,
    /// VIR_ERR_INVALID_STORAGE_POOL
    InvalidStoragePool = 46,
    /// VIR_ERR_INVALID_STORAGE_VOL
    InvalidStorageVol = 47,
    /// VIR_WAR_NO_STORAGE
    WarNoStorage = 48,
    /// VIR_ERR_NO_STORAGE_POOL
    NoStoragePool = 49,
    /// VIR_ERR_NO_STORAGE_VOL
    NoStorageVol = 50,
    /// VIR_WAR_NO_NODE
    WarNoNode = 51,
    /// VIR_ERR_INVALID_NODE_DEVICE
    InvalidNodeDevice = 52,
    /// VIR_ERR_NO_NODE_DEVICE
    NoNodeDevice = 53,
    /// VIR_ERR_NO_SECURITY_MODEL
    NoSecurityModel = 54,
    /// VIR_ERR_OPERATION_INVALID
    OperationInvalid = 55,
    /// VIR_WAR_NO_INTERFACE
    WarNoInterface = 56,
    /// VIR_ERR_NO_INTERFACE
    NoInterface = 57,
    /// VIR_ERR_INVALID_INTERFACE
    InvalidInterface = 58,
    /// VIR_ERR_MULTIPLE_INTERFACES
    MultipleInterfaces = 59,
    /// VIR_WAR_NO_NWFILTER
    WarNoNwfilter = 60,
    /// VIR_ERR_INVALID_NWFILTER
    InvalidNwfilter = 61,
    /// VIR_ERR_NO_NWFILTER
    NoNwfilter = 62,
    /// VIR_ERR_BUILD_FIREWALL
    BuildFirewall = 63,
    /// VIR_WAR_NO_SECRET
    WarNoSecret = 64,
    /// VIR_ERR_INVALID_SECRET
    InvalidSecret = 65,
    /// VIR_ERR_NO_SECRET
    NoSecret = 66,
    /// VIR_ERR_CONFIG_UNSUPPORTED
    ConfigUnsupported = 67,
    /// VIR_ERR_OPERATION_TIMEOUT
    OperationTimeout = 68,
    /// VIR_ERR_MIGRATE_PERSIST_FAILED
    MigratePersistFailed = 69,
    /// VIR_ERR_HOOK_SCRIPT_FAILED
    HookScriptFailed = 70,
    /// VIR_ERR_INVALID_DOMAIN_SNAPSHOT
    InvalidDomainSnapshot = 71,
    /// VIR_ERR_NO_DOMAIN_SNAPSHOT
    NoDomainSnapshot = 72,
    /// VIR_ERR_INVALID_STREAM
    InvalidStream = 73,
    /// VIR_ERR_ARGUMENT_UNSUPPORTED
    ArgumentUnsupported = 74,
    /// VIR_ERR_STORAGE_PROBE_FAILED
    StorageProbeFailed = 75,
    /// VIR_ERR_STORAGE_POOL_BUILT
    StoragePoolBuilt = 76,
    /// VIR_ERR_SNAPSHOT_REVERT_RISKY
    SnapshotRevertRisky = 77,
    /// VIR_ERR_OPERATION_ABORTED
    OperationAborted = 78,
    /// VIR_ERR_AUTH_CANCELLED
    AuthCancelled = 79,
    /// VIR_ERR_NO_DOMAIN_METADATA
    NoDomainMetadata = 80,
    /// VIR_ERR_MIGRATE_UNSAFE
    MigrateUnsafe = 81,
    /// VIR_ERR_OVERFLOW
    Overflow = 82,
    /// VIR_ERR_BLOCK_COPY_ACTIVE
    BlockCopyActive = 83,
    /// VIR_ERR_OPERATION_UNSUPPORTED
    OperationUnsupported = 84,
    /// VIR_ERR_SSH
    Ssh = 85,
    /// VIR_ERR_AGENT_UNRESPONSIVE
    AgentUnresponsive = 86,
    /// VIR_ERR_RESOURCE_BUSY
    ResourceBusy = 87,
    /// VIR_ERR_ACCESS_DENIED
    AccessDenied = 88,
    /// VIR_ERR_DBUS_SERVICE
    DbusService = 89,
    /// VIR_ERR_STORAGE_VOL_EXIST
    StorageVolExist = 90,
    /// VIR_ERR_CPU_INCOMPATIBLE
    CpuIncompatible = 91,
    /// VIR_ERR_XML_INVALID_SCHEMA
    XmlInvalidSchema = 92,
    /// VIR_ERR_MIGRATE_FINISH_OK
    MigrateFinishOk = 93,
    /// VIR_ERR_AUTH_UNAVAILABLE
    AuthUnavailable = 94,
    /// VIR_ERR_NO_SERVER
    NoServer = 95,
    /// VIR_ERR_NO_CLIENT
    NoClient = 96,
    /// VIR_ERR_AGENT_UNSYNCED
    AgentUnsynced = 97,
    /// VIR_ERR_LIBSSH
    Libssh = 98,
    /// VIR_ERR_DEVICE_MISSING
    DeviceMissing = 99,
    /// VIR_ERR_INVALID_NWFILTER_BINDING
    InvalidNwfilterBinding = 100,
    /// VIR_ERR_NO_NWFILTER_BINDING
    NoNwfilterBinding = 101,
    /// VIR_ERR_INVALID_DOMAIN_CHECKPOINT
    InvalidDomainCheckpoint = 102,
    /// VIR_ERR_NO_DOMAIN_CHECKPOINT
    NoDomainCheckpoint = 103,
    /// VIR_ERR_NO_DOMAIN_BACKUP
    NoDomainBackup = 104,
    /// VIR_ERR_INVALID_NETWORK_PORT
    InvalidNetworkPort = 105,
    /// VIR_ERR_NETWORK_PORT_EXIST
    NetworkPortExist = 106,
    /// VIR_ERR_NO_NETWORK_PORT
    NoNetworkPort = 107,
    /// VIR_ERR_NO_HOSTNAME
    NoHostname = 108,
    /// VIR_ERR_CHECKPOINT_INCONSISTENT
    CheckpointInconsistent = 109,
    /// VIR_ERR_MULTIPLE_DOMAINS
    MultipleDomains = 110,
}

internal static unsafe partial class Native
{
    internal const string Library = "libvirt.so.0";

    /// Leading fields of struct _virError; the rest (deprecated object pointers, str1..3, int1..2) is not read,
    /// and the struct is only ever used through libvirt's pointer, so a prefix is enough.
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirError
    {
        public int Code;
        public int Domain;
        public nint Message;
        public int Level;
    }

    [LibraryImport(Library)]
    internal static partial VirError* virGetLastError();

    [LibraryImport(Library)]
    internal static partial void virResetLastError();

    [LibraryImport(Library)]
    internal static partial void virSetErrorFunc(void* userData, delegate* unmanaged<void*, VirError*, void> handler);
}
