// Wraps virInitialize, virGetVersion and the default event loop (libvirt-host.h, libvirt-event.h)
using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Libvirt;

public static unsafe class Libvirt
{
    private static readonly Lock InitLock = new();
    private static volatile bool _initialized;

    /// Idempotent and thread-safe. The default event loop has to be registered before the first virConnectOpen,
    /// otherwise event registration on that connection fails ("could not initialize domain event timer"), so
    /// every Connect.Open goes through here.
    public static void Initialize()
    {
        if (_initialized)
        {
            return;
        }
        lock (InitLock)
        {
            if (_initialized)
            {
                return;
            }
            LibvirtException.Check(Native.virInitialize());
            // libvirt prints every error to stderr by default; errors reach callers as exceptions instead.
            Native.virSetErrorFunc(null, &IgnoreError);
            LibvirtException.Check(Native.virEventRegisterDefaultImpl());
            // Never stopped: libvirt offers no way to unregister the default implementation, and connections
            // may live until the process exits. Background so it never keeps the process alive.
            var thread = new Thread(RunEventLoop) { IsBackground = true, Name = "libvirt-events" };
            thread.Start();
            _initialized = true;
        }
    }

    /// virGetVersion, decoded from major * 1,000,000 + minor * 1,000 + release.
    public static Version LibraryVersion
    {
        get
        {
            // Initialize first so a failure here is not also printed to stderr.
            Initialize();
            CULong version;
            LibvirtException.Check(Native.virGetVersion(&version, null, null));
            var v = (ulong)version.Value;
            return new Version((int)(v / 1_000_000), (int)(v / 1_000 % 1_000), (int)(v % 1_000));
        }
    }

    /// Exceptions thrown by event or close callbacks. They cannot propagate into libvirt's C frames, so they are
    /// handed here (on the "libvirt-events" thread) instead of being lost silently.
    public static event Action<Exception>? CallbackException;

    internal static void ReportCallbackException(Exception exception)
    {
        try
        {
            CallbackException?.Invoke(exception);
        }
        catch
        {
            // The reporter itself failed; nothing sensible is left to do on the event thread.
        }
    }

    private static void RunEventLoop()
    {
        while (true)
        {
            if (Native.virEventRunDefaultImpl() < 0)
            {
                // A failed iteration must neither kill the loop nor leave its error behind on this thread for the
                // next callback's libvirt call to misreport; the pause keeps a persistent failure from spinning a core.
                Native.virResetLastError();
                Thread.Sleep(100);
            }
        }
    }

    [UnmanagedCallersOnly]
    private static void IgnoreError(void* userData, Native.VirError* error)
    {
    }
}

internal static unsafe partial class Native
{
    [LibraryImport(Library)]
    internal static partial int virInitialize();

    [LibraryImport(Library)]
    internal static partial int virGetVersion(CULong* libVer, byte* type, CULong* typeVer);

    [LibraryImport(Library)]
    internal static partial int virEventRegisterDefaultImpl();

    [LibraryImport(Library)]
    internal static partial int virEventRunDefaultImpl();
}
