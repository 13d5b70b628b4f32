// Wraps virConnectGetAllDomainStats and virTypedParameter (libvirt-domain.h, libvirt-common.h)
using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Libvirt;

/// One domain's bulk statistics. Parameters holds libvirt's flat keys ("state.state", "balloon.current",
/// "vcpu.0.time", ...) with int, uint, long, ulong, double, bool or string values as libvirt typed them.
public sealed record DomainStatsRecord(string Name, Guid Uuid, IReadOnlyDictionary<string, object> Parameters)
{
    public DomainState? State =>
        Parameters.TryGetValue("state.state", out var value) && value is int state ? (DomainState)state : null;

    internal static unsafe IReadOnlyList<DomainStatsRecord> GetAll(ConnectHandle conn, DomainStatsTypes stats,
        ConnectGetAllDomainStatsFlags flags)
    {
        Native.VirDomainStatsRecord** records;
        var count = LibvirtException.Check(
            Native.virConnectGetAllDomainStats(conn, (uint)stats, &records, (uint)flags));
        try
        {
            var result = new DomainStatsRecord[count];
            var uuid = stackalloc byte[Native.UuidStringBufferLength];
            for (var i = 0; i < count; i++)
            {
                var record = records[i];
                // record->dom is owned by the list and freed with it, so everything is copied out now.
                var name = Marshal.PtrToStringUTF8(LibvirtException.Check(Native.virDomainGetName(record->Dom)))!;
                LibvirtException.Check(Native.virDomainGetUUIDString(record->Dom, uuid));
                result[i] = new DomainStatsRecord(name, Guid.Parse(Marshal.PtrToStringUTF8((nint)uuid)!),
                    TypedParameters.Read(record->Params, record->NParams));
            }
            return result;
        }
        finally
        {
            Native.virDomainStatsRecordListFree(records);
        }
    }
}

internal static unsafe class TypedParameters
{
    internal static Dictionary<string, object> Read(Native.VirTypedParameter* parameters, int count)
    {
        var result = new Dictionary<string, object>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var p = &parameters[i];
            var field = Marshal.PtrToStringUTF8((nint)p->Field)!;
            object? value = (TypedParameterType)p->Type switch
            {
                TypedParameterType.Int => p->Value.I,
                TypedParameterType.UInt => p->Value.UI,
                TypedParameterType.LLong => p->Value.L,
                TypedParameterType.ULLong => p->Value.UL,
                TypedParameterType.Double => p->Value.D,
                TypedParameterType.Boolean => p->Value.B != 0,
                TypedParameterType.String => Marshal.PtrToStringUTF8(p->Value.S) ?? "",
                // A type newer than this binding: skipped rather than guessed at.
                _ => null,
            };
            if (value is not null)
            {
                result[field] = value;
            }
        }
        return result;
    }
}

/// virTypedParameterType
public enum TypedParameterType
{
    /// VIR_TYPED_PARAM_INT
    Int = 1,
    /// VIR_TYPED_PARAM_UINT
    UInt = 2,
    /// VIR_TYPED_PARAM_LLONG
    LLong = 3,
    /// VIR_TYPED_PARAM_ULLONG
    ULLong = 4,
    /// VIR_TYPED_PARAM_DOUBLE
    Double = 5,
    /// VIR_TYPED_PARAM_BOOLEAN
    Boolean = 6,
    /// VIR_TYPED_PARAM_STRING
    String = 7,
}

/// virDomainStatsTypes
[Flags]
public enum DomainStatsTypes : uint
{
    /// VIR_DOMAIN_STATS_STATE
    State = 1 << 0,
    /// VIR_DOMAIN_STATS_CPU_TOTAL
    CpuTotal = 1 << 1,
    /// VIR_DOMAIN_STATS_BALLOON
    Balloon = 1 << 2,
    /// VIR_DOMAIN_STATS_VCPU
    Vcpu = 1 << 3,
    /// VIR_DOMAIN_STATS_INTERFACE
    Interface = 1 << 4,
    /// VIR_DOMAIN_STATS_BLOCK
    Block = 1 << 5,
    /// VIR_DOMAIN_STATS_PERF
    Perf = 1 << 6,
    /// VIR_DOMAIN_STATS_IOTHREAD
    Iothread = 1 << 7,
    /// VIR_DOMAIN_STATS_MEMORY
    Memory = 1 << 8,
    /// VIR_DOMAIN_STATS_DIRTYRATE
    Dirtyrate = 1 << 9,
    /// VIR_DOMAIN_STATS_VM
    Vm = 1 << 10,
}

/// virConnectGetAllDomainStatsFlags. The filters share values with ConnectListAllDomainsFlags.
[Flags]
public enum ConnectGetAllDomainStatsFlags : uint
{
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
    Active = 1 << 0,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE
    Inactive = 1 << 1,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_PERSISTENT
    Persistent = 1 << 2,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_TRANSIENT
    Transient = 1 << 3,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING
    Running = 1 << 4,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_PAUSED
    Paused = 1 << 5,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_SHUTOFF
    Shutoff = 1 << 6,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_OTHER
    Other = 1 << 7,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT: skip statistics that would block on a busy domain.
    NoWait = 1 << 29,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING
    Backing = 1 << 30,
    /// VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS: fail instead of silently omitting unsupported groups.
    EnforceStats = 1u << 31,
}

internal static unsafe partial class Native
{
    /// VIR_TYPED_PARAM_FIELD_LENGTH
    internal const int TypedParamFieldLength = 80;

    /// struct _virTypedParameter: char field[80]; int type; then the union, which holds 8-byte members and so
    /// starts at 88 after 4 bytes of padding; 96 bytes in all.
    [StructLayout(LayoutKind.Explicit, Size = 96)]
    internal struct VirTypedParameter
    {
        [FieldOffset(0)] public fixed byte Field[TypedParamFieldLength];
        [FieldOffset(80)] public int Type;
        [FieldOffset(88)] public VirTypedParameterValue Value;
    }

    [StructLayout(LayoutKind.Explicit, Size = 8)]
    internal struct VirTypedParameterValue
    {
        [FieldOffset(0)] public int I;
        [FieldOffset(0)] public uint UI;
        [FieldOffset(0)] public long L;
        [FieldOffset(0)] public ulong UL;
        [FieldOffset(0)] public double D;
        [FieldOffset(0)] public byte B;
        [FieldOffset(0)] public nint S;
    }

    /// struct _virDomainStatsRecord
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirDomainStatsRecord
    {
        public nint Dom;
        public VirTypedParameter* Params;
        public int NParams;
    }

    [LibraryImport(Library)]
    internal static partial int virConnectGetAllDomainStats(ConnectHandle conn, uint stats,
        VirDomainStatsRecord*** retStats, uint flags);

    [LibraryImport(Library)]
    internal static partial void virDomainStatsRecordListFree(VirDomainStatsRecord** stats);
}
