using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace QubesWeb.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class QubeAddresses : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "IpAddress",
                table: "Qubes",
                type: "TEXT",
                maxLength: 15,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "MacAddress",
                table: "Qubes",
                type: "TEXT",
                maxLength: 17,
                nullable: true);

            // Existing qubes get addresses in the order they were made (Id), every qube but dom0, lowest first: the
            // same order and formulas as QubeAddresses.IpAt/MacFor (253 hosts .2-.254 per /24 of 10.137.0.0/16), so a
            // backfilled row looks as if it had been made today. Deterministic: one inventory always gets the same.
            // Before the unique indexes, which then hold for the backfilled rows as for new ones.
            migrationBuilder.Sql("""
                WITH numbered AS (
                    SELECT Id, ROW_NUMBER() OVER (ORDER BY Id) - 1 AS k FROM Qubes WHERE Class <> 'AdminVM')
                UPDATE Qubes SET
                    IpAddress = (SELECT '10.137.' || (k / 253) || '.' || (2 + k % 253) FROM numbered WHERE numbered.Id = Qubes.Id),
                    MacAddress = (SELECT printf('00:16:3e:5e:%02x:%02x', k / 253, 2 + k % 253) FROM numbered WHERE numbered.Id = Qubes.Id)
                WHERE Id IN (SELECT Id FROM numbered WHERE k < 64768);
                """);

            migrationBuilder.CreateIndex(
                name: "IX_Qubes_IpAddress",
                table: "Qubes",
                column: "IpAddress",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Qubes_MacAddress",
                table: "Qubes",
                column: "MacAddress",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Qubes_IpAddress",
                table: "Qubes");

            migrationBuilder.DropIndex(
                name: "IX_Qubes_MacAddress",
                table: "Qubes");

            migrationBuilder.DropColumn(
                name: "IpAddress",
                table: "Qubes");

            migrationBuilder.DropColumn(
                name: "MacAddress",
                table: "Qubes");
        }
    }
}
