namespace QubesWeb.Tests.Shared;

/// <summary>Files tests hand the console as if the user had put them on dom0's disk.</summary>
public static class TestFiles
{
    /// <summary>
    /// A file with ISO 9660's volume descriptor ("CD001" in sector 16), which is what the console checks of an
    /// installer's ISO; for the test driver, which boots nothing. The real-hypervisor lane makes a bootable one.
    /// </summary>
    public static string FakeIso(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var bytes = new byte[18 * 2048];
        "\u0001CD001"u8.CopyTo(bytes.AsSpan(16 * 2048));
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
