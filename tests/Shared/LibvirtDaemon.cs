// The real-hypervisor lane's libvirt daemon, for the lane's tests (RealLibvirtd) and the benchmarks that measure a real
// hypervisor: there is no systemd here, so it is started when its socket does not answer.
using System.Diagnostics;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.Tests.Shared;

public static class LibvirtDaemon
{
    public const string Uri = "qemu:///system";
    private const string Socket = "/run/libvirt/libvirt-sock";

    /// <summary>libvirtd and virtlogd (without which starts fail) answer, started here if they did not.</summary>
    public static async Task EnsureRunningAsync()
    {
        GrantKvmToItsGroup();
        if (CanConnect()) return;
        foreach (var daemon in new[] { "/usr/sbin/virtlogd", "/usr/sbin/libvirtd" })
        {
            if (!File.Exists(daemon))
                throw new InvalidOperationException($"{daemon} is missing: install libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86 (the README's test command does).");
            var psi = new ProcessStartInfo(daemon) { UseShellExecute = false };
            psi.ArgumentList.Add("-d");
            using var p = Process.Start(psi)!;
            await p.WaitForExitAsync();
        }
        await Eventually.UntilAsync(CanConnect, $"libvirtd to answer on {Socket}", TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Debian's udev rule gives /dev/kvm to group kvm (mode 0660), which libvirt's qemu user belongs to. Without udev
    /// the node stays root-only: qemu cannot open it, and libvirt, which still sees /dev/kvm, probes qemu's
    /// capabilities again on every define (35 s each). This does what udev would have done.
    /// </summary>
    private static void GrantKvmToItsGroup()
    {
        if (!File.Exists("/dev/kvm")) return;
        foreach (var (tool, args) in new[] { ("chgrp", new[] { "kvm", "/dev/kvm" }), ("chmod", new[] { "0660", "/dev/kvm" }) })
        {
            var psi = new ProcessStartInfo(tool) { UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit();
        }
    }

    private static bool CanConnect()
    {
        if (!File.Exists(Socket)) return false;
        try
        {
            using var c = Connect.Open(Uri);
            return c.IsAlive;
        }
        catch (LibvirtException)
        {
            return false;
        }
    }

    /// <summary>Removes a domain a test or benchmark made, whatever state it is in.</summary>
    public static void Remove(string name)
    {
        using var c = Connect.Open(Uri);
        using var d = c.TryLookupDomainByName(name);
        if (d is null) return;
        try
        {
            if (d.IsActive) d.Destroy();
        }
        catch (LibvirtException e) when (e.Code == ErrorNumber.OperationInvalid && !d.IsActive)
        {
            // Its guest powered off between the look and the destroy (a test's last shutdown may still be under way).
        }
        d.Undefine();
    }
}
